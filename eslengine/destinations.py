"""Who a call may ring: destination syntax, number filters, and the
toll-fraud policy.

Pure. A destination is an E.164 number (sent through the configured route),
a FreeSWITCH directory user (``user/1000[@domain]``) or, where the operator
allows the domain, a SIP URI (``sip:alice@pbx.example.com``).

Toll fraud through a public click-to-call button is the costliest real attack
on this kind of service, so numbers pass, in order: the operator's blocked
prefixes, libphonenumber's validation (a number that fits no range of its
country's numbering plan is refused unless the operator allows such numbers:
its type would be "unknown", so no refused type could catch it), the refused
number types (premium rate by default, as classified by libphonenumber's
metadata), the list of countries served, and the allow-list regexes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
import re2
from phonenumbers import PhoneNumberType

from .config import Config
from .errors import ValidationError

# A compiled RE2 pattern (google-re2 ships no type hints).
NumberFilter = Any

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_USER = re.compile(r"user/([A-Za-z0-9_.-]{1,64})(?:@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*))?")
_SIP = re.compile(r"sips?:([A-Za-z0-9_.+-]{1,64})@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*(?::[0-9]{1,5})?)")
MAX_FILTER_PATTERN = 100
# What a number filter reads of each destination, and the memory RE2 may
# give one compiled filter (its default is 8 MiB; a 100-character pattern
# needs a few KiB unless it multiplies counted repetitions).
MAX_FILTER_INPUT = 64
MAX_FILTER_MEMORY = 1 << 20

NUMBER_TYPES = {
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "shared_cost": PhoneNumberType.SHARED_COST,
    "personal_number": PhoneNumberType.PERSONAL_NUMBER,
    "uan": PhoneNumberType.UAN,
    "voip": PhoneNumberType.VOIP,
    "pager": PhoneNumberType.PAGER,
    "toll_free": PhoneNumberType.TOLL_FREE,
    "mobile": PhoneNumberType.MOBILE,
    "fixed_line": PhoneNumberType.FIXED_LINE,
    "voicemail": PhoneNumberType.VOICEMAIL,
}


@dataclass(frozen=True, slots=True)
class Destination:
    """One number or address to ring."""

    kind: str  # "e164" | "user" | "sip"
    number: str  # "+15551230001" | "1000" | "alice"
    domain: str = ""

    def __str__(self) -> str:
        if self.kind == "user":
            return "user/%s%s" % (self.number, "@" + self.domain if self.domain else "")
        if self.kind == "sip":
            return "sip:%s@%s" % (self.number, self.domain)
        return self.number


def _filter_options() -> Any:
    options = re2.Options()
    options.max_mem = MAX_FILTER_MEMORY
    options.log_errors = False  # a client's bad pattern is a 422, not a line on stderr
    return options


_FILTER_OPTIONS = _filter_options()


def check_filter_pattern(field: str, pattern: str) -> NumberFilter:
    """Compile a client's number-filter regex with RE2, whose running time is
    linear in the input whatever the pattern: Python's backtracking engine
    can take minutes on a pattern of a few characters (``(1*)1*1*1*1*1*x``
    on 64 digits), holding the GIL meanwhile. RE2's syntax has no back
    references or lookaround; a pattern needs a capture group and at most
    ``MAX_FILTER_PATTERN`` characters, and what it compiles to is held to
    ``MAX_FILTER_MEMORY``."""
    if len(pattern) > MAX_FILTER_PATTERN:
        raise ValidationError(field, "at most %d characters" % MAX_FILTER_PATTERN)
    try:
        compiled = re2.compile(pattern, _FILTER_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "rejected"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValidationError(field, "not a valid regular expression (RE2 syntax): %s" % reason) from None
    if compiled.groups < 1:
        raise ValidationError(field, "needs a capture group: the first group is the number to dial")
    return compiled


# What a person may type as a phone number: digits and the separators
# people write (no letters: libphonenumber would read "1-800-FLOWERS").
_TYPED = re.compile(r"\+?[0-9 ().\-/\u00a0]{1,40}")


def typed_number(field: str, value: str, region: str) -> str:
    """A number as a person types it (``"(212) 555-0123"``, ``"+44 20 7946
    0958"``, ``"00 44 20 ..."``) in E.164, read by libphonenumber the way
    someone in ``region`` means it. ``ValidationError`` naming ``field``
    when it is no possible number there."""
    if not _TYPED.fullmatch(value) or not any("0" <= ch <= "9" for ch in value):
        raise ValidationError(field, "must be a phone number: digits, with spaces, dashes, dots or brackets")
    if not region and not value.startswith("+"):
        raise ValidationError(field, _NATIONAL)
    try:
        parsed = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException as exc:
        reason = str(exc).split(") ", 1)[-1].rstrip(".")  # "(1) The string supplied ..."
        raise ValidationError(field, "not a phone number%s: %s" % (_in(region), reason)) from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_possible_number(parsed) or not _E164.fullmatch(e164):
        raise ValidationError(field, "not a possible phone number%s" % _in(region))
    return e164


def _in(region: str) -> str:
    return " in region %s" % region if region else ""


_NATIONAL = ("a number without its country code: write it in E.164 (+15551230001), or set the region it is "
             "in (the request's \"region\", or ESLENGINE_DEFAULT_REGION)")


def apply_number_filter(field: str, value: str, number_filter: str | NumberFilter | None, region: str = "") -> str:
    """Turn what a person typed into a number to dial. ``"digits"`` reads
    the number as ``typed_number`` does (E.164 with a leading ``+``, else
    national in ``region``; refused without one); a regex
    (``check_filter_pattern``) keeps the first capture group of its leftmost
    match in the first ``MAX_FILTER_INPUT`` characters, which gets a ``+``
    if it has none (numbers are dialed in E.164)."""
    if number_filter is None or value.startswith(("user/", "sip:", "sips:")):
        return value
    if number_filter == "digits":
        kept = "".join(ch for ch in value[:MAX_FILTER_INPUT] if "0" <= ch <= "9")
        if not kept:
            raise ValidationError(field, "number_filter left no number to dial")
        plus = value.lstrip()[:1] == "+"
        return typed_number(field, ("+" if plus else "") + kept, region)
    else:
        assert not isinstance(number_filter, str)
        match = number_filter.search(value[:MAX_FILTER_INPUT])
        if match is None or not match.group(1):
            raise ValidationError(field, "does not match number_filter")
        result = str(match.group(1))
    result = result.lstrip("+")
    if not (result.isascii() and result.isdigit()):
        raise ValidationError(field, "number_filter left no number to dial")
    return "+" + result


def parse_destination(field: str, value: object, config: Config, *, check_policy: bool = True,
                      region: str = "") -> Destination:
    """One destination. With ``region`` (a request's, or the config's
    default), a number written without its country code is read in it."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "required: an E.164 number (+15551230001), user/<extension> or a SIP URI")
    if len(value) > 128:
        raise ValidationError(field, "too long")
    if not _E164.fullmatch(value) and _TYPED.fullmatch(value):
        value = typed_number(field, value, region or config.default_region)
    if _E164.fullmatch(value):
        if check_policy:
            check_number_allowed(field, value, config)
        return Destination("e164", value)
    match = _USER.fullmatch(value)
    if match:
        domain = match.group(2) or ""
        if domain and check_policy:
            check_user_domain(field, domain, config)
        return Destination("user", match.group(1), domain)
    match = _SIP.fullmatch(value)
    if match:
        domain = match.group(2)
        if not config.sip_domains:
            raise ValidationError(field, "SIP URI destinations are not enabled on this service (setting: ESLENGINE_SIP_DOMAINS)")
        if not any(re.fullmatch(p, domain) for p in config.sip_domains):
            raise ValidationError(field, "SIP domain %s is not allowed (setting: ESLENGINE_SIP_DOMAINS)" % domain)
        return Destination("sip", match.group(1), domain)
    raise ValidationError(field, "must be an E.164 number (+15551230001), user/<extension> or a SIP URI")


@functools.lru_cache(maxsize=65536)
def classify(number: str) -> tuple[int, str | None, bool] | None:
    """libphonenumber's type and region of an E.164 number, and whether it
    is valid (it fits its region's numbering plan: ``is_valid_number``), or
    None when it cannot be parsed (no such country code). Cached: one party
    of a click-to-call (the company's line) is usually the same for every
    call, and classifying a North American number tries some twenty
    regions' patterns."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    # is_valid_number(parsed), with the region found once.
    valid = region is not None and phonenumbers.is_valid_number_for_region(parsed, region)
    return phonenumbers.number_type(parsed), region, valid


# The metadata field of each type a quick look can rule out. Fixed-line and
# mobile are told apart by more than one pattern, so refusing those always
# takes the full classification.
_TYPE_DESC = {
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


@functools.lru_cache(maxsize=1024)
def _type_patterns(country_code: int, kinds: frozenset[int]) -> re.Pattern[str] | None:
    """One pattern matching every national number that any region of
    ``country_code`` lists under any of ``kinds``; None when none does."""
    patterns = set()
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        if metadata is None:
            continue
        for kind in kinds:
            desc = getattr(metadata, _TYPE_DESC[kind])
            if desc is not None and desc.national_number_pattern:
                patterns.add(desc.national_number_pattern)
    if not patterns:
        return None
    return re.compile("|".join("(?:%s)" % p for p in sorted(patterns)))


@functools.lru_cache(maxsize=64)
def _kinds(names: tuple[str, ...]) -> frozenset[int]:
    return frozenset(NUMBER_TYPES[name] for name in names if name in NUMBER_TYPES)


@functools.lru_cache(maxsize=65536)
def surely_not(number: str, kinds: frozenset[int]) -> bool:
    """True when ``number`` is certainly none of ``kinds``: no region of its
    country code has a pattern of those types that matches it. A number
    this cannot clear goes through ``classify``. On a number seen for the
    first time, a quarter of what ``classify`` costs (it needs no region)."""
    if not kinds or not kinds.issubset(_TYPE_DESC):
        return False
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return False
    pattern = _type_patterns(parsed.country_code, kinds)
    return pattern is None or pattern.fullmatch(phonenumbers.national_significant_number(parsed)) is None


def check_number_allowed(field: str, number: str, config: Config) -> None:
    """Toll-fraud guard for one E.164 number (ValidationError if refused):
    blocked prefixes, numbers libphonenumber cannot validate (unless the
    operator allows them), refused types, countries served, allow-list."""
    for prefix in config.blocked_prefixes:
        if number.startswith(prefix):
            raise ValidationError(field, "destination %s... is blocked (setting: ESLENGINE_BLOCKED_PREFIXES)" % prefix)
    validate = not config.allow_unvalidated_numbers
    if not validate and not config.countries and surely_not(number, _kinds(config.refused_number_types)):
        return _check_allow_list(field, number, config)
    if validate or config.refused_number_types or config.countries:
        classified = classify(number)
        # An invalid number classifies as UNKNOWN: no refused type would
        # catch a premium-rate range libphonenumber's metadata does not
        # describe, or a number one digit longer than its range.
        if validate and (classified is None or not classified[2]):
            raise ValidationError(field, "not a valid phone number for its country "
                                         "(setting: ESLENGINE_ALLOW_UNVALIDATED_NUMBERS)")
        if classified is None:
            if config.countries:
                raise ValidationError(field, "destination country unknown is not served "
                                             "(setting: ESLENGINE_COUNTRIES)")
            return _check_allow_list(field, number, config)
        kind, region, _ = classified
        for name in config.refused_number_types:
            if NUMBER_TYPES.get(name) == kind:
                raise ValidationError(field, "%s numbers are not allowed (setting: ESLENGINE_REFUSED_NUMBER_TYPES)"
                                      % name.replace("_", "-"))
        if config.countries and region not in config.countries:
            raise ValidationError(field, "destination country %s is not served (setting: ESLENGINE_COUNTRIES)"
                                  % (region or "unknown"))
    _check_allow_list(field, number, config)


def check_user_domain(field: str, domain: str, config: Config) -> None:
    """A ``user/<ext>@domain`` destination may name only a configured
    directory domain (ValidationError otherwise)."""
    if domain.lower() not in config.user_domains:
        raise ValidationError(field, "directory domain %s is not allowed (setting: ESLENGINE_USER_DOMAIN)" % domain)


def _check_allow_list(field: str, number: str, config: Config) -> None:
    if config.allow_patterns and not any(re.fullmatch(p, number) for p in config.allow_patterns):
        raise ValidationError(field, "destination is not in the allowed ranges (setting: ESLENGINE_ALLOW)")
