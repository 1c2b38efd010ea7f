"""A validated ``CallRequest`` → the ``originate`` command. The only place
FreeSWITCH dial-string syntax is written.

This module is the security boundary: everything a client sends can end up in
the command, and nothing it sends may change the command's structure.

How FreeSWITCH reads a channel-variable value in ``originate {name=value,...}``
(switch_utils.c, switch_event.c): the originate arguments are split at blanks
(a backslash protects the next byte, ``'`` toggles quoting) and each argument
is cleaned (quotes removed; ``\\\\ \\' \\"`` and ``\\n \\r \\t \\s`` unescaped);
the ``{...}`` block is then split at ``,`` and cleaned again (``\\,`` too),
and each ``name=value`` is split at the first ``=`` and cleaned once more.
A value therefore passes three clean-up rounds. ``encode_value`` escapes it
once per round, innermost first, so it arrives byte for byte; spaces travel
as ``\\s`` so no round can split or trim them.

What no escape can make safe is refused by ``check_value``: control
characters (a line break ends the ESL frame and starts a second command),
the block and argument delimiters ``{ } [ ] < > ( ) |`` whose matching
ignores escapes, and ``${`` which FreeSWITCH refuses to set.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    from .calls import CallRequest, Destination
    from .config import Config

VAR_PREFIX = "eslengine_var_"
JOB_VAR = "eslengine_job_id"
LEG_VAR = "eslengine_leg"

_FORBIDDEN = frozenset("{}[]<>()|")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_.@+-]+")
# Each clean-up round unescapes a backslash before these (plus its own
# delimiter); spaces are sent as \s so no round splits or trims them.
_ROUNDS = ("=", ",", "")


def check_value(field: str, value: str) -> None:
    """Refuse a value that no escaping can carry safely (ValidationError)."""
    for ch in value:
        if ch in _FORBIDDEN:
            raise ValidationError(field, "may not contain %r" % ch)
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            raise ValidationError(field, "may not contain control or invisible characters (U+%04X)" % ord(ch))
    if "${" in value:
        raise ValidationError(field, "may not contain '${'")


def _escape_round(value: str, delim: str) -> str:
    """Escape for one clean-up round. The blank split (``delim == ""``) needs
    every space as ``\\s``; the later rounds only trim spaces at the ends."""
    out = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch == "\\" or ch == "'" or ch == '"' or (delim and ch == delim):
            out.append("\\" + ch)
        elif ch == " " and (not delim or i == 0 or i == last):
            out.append("\\s")
        else:
            out.append(ch)
    return "".join(out)


def encode_value(value: str) -> str:
    """A channel-variable value written so FreeSWITCH reads back ``value``."""
    if _SAFE_TOKEN.fullmatch(value):
        return value
    for delim in _ROUNDS:
        value = _escape_round(value, delim)
    return value


def variable_block(variables: Iterable[tuple[str, str]]) -> str:
    """``{name=value,...}`` with every value encoded; names must be safe."""
    parts = []
    for name, value in variables:
        if not _NAME.fullmatch(name):
            raise ValueError("unsafe channel variable name %r" % name)
        parts.append("%s=%s" % (name, encode_value(value)))
    return "{" + ",".join(parts) + "}"


def endpoint(dest: Destination, config: Config) -> str:
    """Where FreeSWITCH sends a leg: the route template for E.164 numbers,
    ``user/<ext>[@domain]`` for directory users."""
    if dest.kind == "user":
        domain = dest.domain or config.user_domain
        text = "user/%s%s" % (dest.number, "@" + domain if domain else "")
    else:
        text = config.route_template.format(gateway=config.gateway, number=dest.number.lstrip("+"), e164=dest.number)
    if not re.fullmatch(r"[A-Za-z0-9_.@+/:=-]+", text):
        raise ValueError("endpoint %r has characters a dial string cannot carry" % text)
    return text


def leg_variables(request: CallRequest, leg: str) -> list[tuple[str, str]]:
    """The channel variables one leg carries (the job id, caller ID, timeout,
    and the caller's custom variables under ``eslengine_var_``)."""
    out = [(JOB_VAR, request.id), (LEG_VAR, leg)]
    if leg == "a":
        out.insert(0, ("origination_uuid", request.id))
    if request.caller_id_number:
        out.append(("origination_caller_id_number", request.caller_id_number))
    if request.caller_id_name:
        out.append(("origination_caller_id_name", request.caller_id_name))
    out.append(("originate_timeout", str(request.timeout)))
    if leg == "a":
        out.append(("ignore_early_media", "true"))
    # FreeSWITCH deletes a variable set to the empty string: send none.
    out.extend((VAR_PREFIX + name, value) for name, value in request.variables.items() if value)
    return out


def originate_args(request: CallRequest, config: Config) -> str:
    """The arguments of ``originate``: ring A; when A answers, bridge to B."""
    a = variable_block(leg_variables(request, "a")) + endpoint(request.a, config)
    b = variable_block(leg_variables(request, "b")) + endpoint(request.b, config)
    return "%s &bridge(%s)" % (a, b)


def originate_command(request: CallRequest, config: Config) -> str:
    """The full ``originate ...`` text (send it with ``bgapi``)."""
    command = "originate " + originate_args(request, config)
    if "\n" in command or "\r" in command:  # check_value makes this unreachable
        raise ValueError("line break in originate command")
    return command


def custom_variables(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's custom variables read back from an event's headers."""
    prefix = "variable_" + VAR_PREFIX
    return {k[len(prefix):]: v for k, v in headers.items() if k.startswith(prefix)}
