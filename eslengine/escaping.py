"""How a value reaches FreeSWITCH byte for byte through the clean-up rounds
of an originate, and which values no escaping can carry. A leaf: the
request model checks values with it when a request is read, and
``dialstring`` (the only place dial-string syntax is written) encodes them
with it.

Every value reaches the switch by one of two routes, and each stage of its
route is escaped once, innermost first, so that it arrives byte for byte
(``encode_value``; fakeswitch/dialparse.py models each stage from the C
source, and the property tests parse every command back through it):

* **A variable of the originate itself** (the first party's ``{...}``): the
  originate's arguments are split at blanks (a backslash protects the next
  byte, every ``'`` toggles quoting) and each is cleaned (quotes removed;
  ``\\\\ \\' \\"`` and ``\\n \\r \\t \\s`` unescaped); the ``{...}`` block is split
  at ``,`` and cleaned (``\\,`` too); each ``name=value`` is split at the first
  ``=`` and cleaned once more: ``ARG_ROUNDS``.
* **A variable of the second party's dial string**, which the switch keeps in
  the first leg's ``eslengine_bridge`` and dials with ``bridge
  ${eslengine_bridge}``: ``,`` and ``=`` rounds inside that dial string
  (``VAR_ROUNDS``); then the whole dial string passes variable expansion
  (``switch_channel_expand_variables`` re-reads an inserted value: ``\\\\`` is
  one backslash, ``\\'`` vanishes, ``$$`` is ``$``), escaped by doubling
  every backslash (``EXPANDED``); then either ``uuid_setvar``'s clean-up of its
  last argument or, in the originate's own block, ``ARG_ROUNDS``.

What no escape can carry is refused by ``check_value``: control characters (a
line break ends the ESL frame and starts a second command), the block and
argument delimiters ``{ } [ ] < > ( ) |`` whose matching ignores escapes,
``${`` (expansion, and FreeSWITCH refuses to set such a value), ``$$`` (which
expansion reads as one ``$`` only when something else in the text triggers
it), ``:_:`` (anywhere in a dial string it splits it into an enterprise
originate before any escape is read) and ``^^`` (at the start of a split
buffer it chooses a new delimiter: the escapes keep a value from ever
starting one, and refusing it keeps that true if they ever fail).

Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .errors import ValidationError

_FORBIDDEN = frozenset("{}[]<>()|")
# Sequences refused anywhere (see the module's docstring), with the reason.
_FORBIDDEN_RUNS = (("${", "may not contain '${'"), ("$$", "may not contain '$$'"),
                   (":_:", "may not contain ':_:'"), ("^^", "may not contain '^^'"))
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_.@+-]+")
# The rounds a value passes, innermost first: the name=value split, the
# variable block's comma split, and (only for text on the originate command
# line itself, or uuid_setvar's value) the blank split's clean-up. EXPANDED is
# variable expansion (switch_channel_expand_variables).
ARG_ROUNDS = ("=", ",", "")
VAR_ROUNDS = ("=", ",")
EXPANDED = "$"


def check_value(field: str, value: str) -> None:
    """Refuse a value that no escaping can carry safely (ValidationError)."""
    if not (value.isascii() and value.isprintable() and _FORBIDDEN.isdisjoint(value)):
        # Printable ASCII holds no control or invisible character.
        for ch in value:
            if ch in _FORBIDDEN:
                raise ValidationError(field, "may not contain %r" % ch)
            cat = unicodedata.category(ch)
            if cat in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
                raise ValidationError(field, "may not contain control or invisible characters (U+%04X)" % ord(ch))
    if "$" in value or ":" in value or "^" in value:
        for run, reason in _FORBIDDEN_RUNS:
            if run in value:
                raise ValidationError(field, reason)


def check_display_name(field: str, value: str) -> None:
    """A caller ID name also travels as a SIP display name (a quoted string,
    ``"name" <sip:...>``), where ``"`` and ``\\`` would need SIP's own
    escaping: refused, with everything ``check_value`` refuses."""
    check_value(field, value)
    for ch in '"\\':
        if ch in value:
            raise ValidationError(field, "may not contain %r" % ch)


def _escape_round(value: str, delim: str) -> str:
    """Escape for one clean-up round. The blank split (``delim == ""``) needs
    every space as ``\\s``; the later rounds only trim spaces at the ends."""
    out = value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')
    if delim:
        out = out.replace(delim, "\\" + delim)
        # Spaces inside survive a trimming round; one at either end would not.
        if value[:1] == " ":
            out = "\\s" + out[1:]
        if value[-1:] == " " and len(value) > 1:
            out = out[:-1] + "\\s"
        return out
    return out.replace(" ", "\\s")


def encode_value(value: str, rounds: Iterable[str] = ARG_ROUNDS) -> str:
    """A value written so FreeSWITCH reads back ``value`` after ``rounds``
    (innermost first; ``EXPANDED`` is variable expansion: every backslash
    doubled, which expansion halves again whether or not anything else in
    the text makes it run, because ``check_value`` leaves no ``${`` or ``$$``)."""
    if _SAFE_TOKEN.fullmatch(value):
        return value
    for delim in rounds:
        if delim == EXPANDED:
            value = value.replace("\\", "\\\\")
        else:
            value = _escape_round(value, delim)
    return value
