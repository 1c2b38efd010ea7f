"""FreeSWITCH's own reading of ``originate`` arguments, re-implemented step for step.

Mirrors, from FreeSWITCH 1.10/1.11:

* ``switch_utils.c``: ``switch_separate_string`` (with its ``^^X`` delimiter switch),
  ``separate_string_blank_delim``, ``separate_string_char_delim``,
  ``cleanup_separated_string``, ``unescape_char``, ``switch_find_end_paren``,
  ``switch_separate_string_string``, ``switch_strip_whitespace``;
* ``switch_utils.h``: ``switch_strchr_strict``, ``switch_true``,
  ``switch_string_var_check_const``;
* ``switch_event.c``: ``switch_event_create_brackets`` and the header rules of
  ``switch_event_add_header_string`` (duplicates append, an empty value deletes);
* ``mod_commands.c``: ``originate_function``;
* ``switch_ivr_originate.c``: the dial-string half of ``switch_ivr_originate``
  (``<>`` and ``{}`` blocks, ``|`` failover groups, ``,`` simultaneous legs, per-leg
  ``[]`` blocks, ``local_var_clobber``);
* ``switch_channel.c``: ``switch_channel_set_variable_var_check`` (refuses ``${``) and
  ``switch_channel_expand_variables_check`` (``${var}`` expansion, with its own
  backslash rules, applied again to every variable's value it inserts);
* ``switch_caller.c``: ``switch_caller_extension_add_application`` (refuses
  application data containing ``\\'``);
* ``switch_ivr_originate.c``: the enterprise split of ``switch_ivr_enterprise_originate``
  (``:_:`` anywhere in the dial string, before any escape is read).

The C code edits one NUL-terminated buffer in place, and some of its behaviour only
follows from that (a backslash just before a block's closing bracket makes the
tokenizer step over the NUL written there and keep splitting the rest of the dial
string). The parser therefore works on a mutable list of characters the same way.
Where the C code would read past the end of its allocation, or reaches a branch
that is not modelled, :class:`DialStringError` is raised with ``cause=None``.

FreeSWITCH works on bytes and this module on ``str``: every character FreeSWITCH
treats specially is ASCII, so the results agree, except for a non-ASCII ``^^X``
separator, which is refused.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)

ORIGINATE_SYNTAX = (
    "<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]"
)
ORIGINATE_MAX_ARGS = 10  # char *argv[10] in originate_function
ORIGINATE_DEFAULT_TIMEOUT = 60  # uint32_t timeout = 60
DEFAULT_DIALPLAN = "XML"
DEFAULT_CONTEXT = "default"
MAX_PEERS = 128  # pipe_names[] / peer_names[] in switch_ivr_originate
MAX_BRACKET_VARS = 1024  # var_array[] in switch_event_create_brackets
ENTERPRISE_DELIM = ":_:"  # SWITCH_ENT_ORIGINATE_DELIM
QUOTED_ESC_COMMA = "\x01"
UNQUOTED_ESC_COMMA = "\x02"
PARSE_ERROR_CAUSE = "DESTINATION_OUT_OF_ORDER"

_NUL = "\0"
_ESCAPE_META = "\\"
_STRIP_WHITESPACE = "\r\n\t \v"  # 13, 10, 9, 32, 11
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TRUE_WORDS = frozenset({"yes", "on", "true", "t", "enabled", "active", "allow"})


class UsageError(ValueError):
    """FreeSWITCH answers ``-USAGE: <ORIGINATE_SYNTAX>``."""


class DialStringError(ValueError):
    """FreeSWITCH refuses the dial string; ``cause`` is the hangup cause it answers
    with (``-ERR <cause>``), or None where FreeSWITCH's behaviour is undefined or
    not modelled here."""

    def __init__(self, message: str, cause: str | None = PARSE_ERROR_CAUSE) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class Leg:
    """One endpoint of a dial string.

    ``variables`` are the channel variables the leg ends up with from the dial
    string: the global ``<>``/``{}`` headers and this leg's ``[]`` headers applied
    in FreeSWITCH's order (``{}`` last, so it wins, unless ``local_var_clobber`` is
    true), minus values refused for containing ``${``. ``leg_variables`` are this
    leg's ``[]`` headers alone, unfiltered.
    """

    endpoint: str
    variables: dict[str, str]
    leg_variables: dict[str, str]


@dataclass(frozen=True)
class DialString:
    """``global_variables``: the leading ``<...>`` and ``{...}`` blocks, unfiltered.
    ``groups``: the ``|`` failover groups in order, each a tuple of the ``,``
    simultaneous legs (an empty group is an empty tuple)."""

    global_variables: dict[str, str]
    groups: tuple[tuple[Leg, ...], ...]
    # An enterprise part FreeSWITCH cannot read fails on its own, with this
    # cause, while the other parts are dialled.
    error: str | None = None

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(leg for group in self.groups for leg in group)


@dataclass(frozen=True)
class Originate:
    """The arguments of one ``originate`` as ``originate_function`` reads them.

    Exactly one of ``app`` (``&app(args)`` form) and ``exten`` (transfer form) is
    set. ``dialplan``, ``context``, ``cid_name``, ``cid_num`` are None when absent
    or ``undef``; FreeSWITCH then uses DEFAULT_DIALPLAN, DEFAULT_CONTEXT and the
    channel defaults. ``timeout`` is ``atoi`` of the seventh argument, None when
    absent (FreeSWITCH then uses ORIGINATE_DEFAULT_TIMEOUT, and also for 0).
    ``app_args`` is the text between the first ``(`` and the first ``)``, before the
    channel-variable expansion FreeSWITCH applies when the application runs;
    ``app_refused``: FreeSWITCH does not add the application (its data holds
    ``\\'``), so the answered channel has nothing to run. ``parts`` are the
    enterprise parts (one for an ordinary dial string); ``dial`` is the first.
    """

    dial: DialString
    app: str | None
    app_args: str | None
    exten: str | None
    dialplan: str | None
    context: str | None
    cid_name: str | None
    cid_num: str | None
    timeout: int | None
    parts: tuple[DialString, ...] = ()
    app_refused: bool = False


def _past_end(action: str) -> DialStringError:
    return DialStringError(f"FreeSWITCH would {action} past the end of its buffer (undefined behaviour)", cause=None)


# --- the buffer ---------------------------------------------------------------------------------
#
# A C string being edited in place is a plain list of one-character strings: its
# characters up to the first NUL, then that NUL, and nothing readable after it. The
# parsers index the list directly, as the C code dereferences its pointers; an index
# past the NUL raises IndexError, which the public functions (@_c_string_entry) report
# as the DialStringError of _past_end. No index is ever negative.
#
# Where the C code walks a string one character at a time only to reach the next
# character it acts on, the walk here takes a str copy of the characters up to the next
# NUL (a "run", see _cstr) and jumps from one such character to the next with a
# compiled character set (_strpbrk) or str.find. The copy stays exact for everything
# the walk reads: these loops only ever write at or behind the character just read.

_F = TypeVar("_F", bound=Callable[..., Any])


def _c_string_entry(func: _F) -> _F:
    """For the public functions: an access past a buffer's NUL, which the C code would
    make without noticing, raises DialStringError (cause None)."""

    @functools.wraps(func)
    def entry(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IndexError as exc:
            # CPython says "list assignment index out of range" for a store and
            # "list index out of range" for a load.
            raise _past_end("write" if "assignment" in str(exc) else "read") from None

    return cast(_F, entry)


def _buffer(text: str) -> list[str]:
    """A C string: the characters of ``text`` up to its first NUL, then one NUL."""
    chars = list(text.split(_NUL, 1)[0])
    chars.append(_NUL)
    return chars


def _cstr(buf: list[str], index: int) -> str:
    """The C string at ``index``: the characters from there up to the next NUL."""
    try:
        return "".join(buf[index : buf.index(_NUL, index)])
    except ValueError:  # every buffer ends in a NUL: index is past it
        raise _past_end("read") from None


@functools.lru_cache(maxsize=256)
def _strpbrk(chars: str) -> re.Pattern[str]:
    """A set of characters: ``_strpbrk(chars).search(run, i)`` finds the first of
    ``chars`` in ``run`` at or after ``i``, like C's ``strpbrk``."""
    return re.compile("[" + re.escape(chars) + "]")


_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", "s": " "}


def unescape_char(escaped: str) -> str:
    """``unescape_char``: ``n r t s`` become LF, CR, TAB, space; anything else is itself."""
    return _UNESCAPES.get(escaped, escaped)


_CLEANUP_SPECIALS = _strpbrk(_ESCAPE_META + "'")
# What cleanup_separated_string turns a backslash and the next character into, when
# that character is not the delimiter: e == '\'' || e == '"' || e == ESCAPE_META ||
# unescape_char(e) != e. A backslash before anything else stays.
_CLEANUP_ESCAPES = {"'": "'", '"': '"', _ESCAPE_META: _ESCAPE_META, **_UNESCAPES}


def _cleanup(buf: list[str], index: int, delim: str | None) -> int:
    """``cleanup_separated_string`` on the C string at ``index``, in place; returns
    where the cleaned string starts.

    The C code copies every kept character down to ``dest`` as it reads; nothing reads
    those places again before the loop ends, so the kept characters are collected and
    stored in one go."""
    ptr = index
    while buf[ptr] == " ":
        ptr += 1
    start = dest = ptr
    end: int | None = None
    inside_quotes = False
    kept: list[str] = []  # buf[start:dest] once the loop is done
    while buf[ptr] != _NUL:
        # One run; the loop comes back for the next only when a backslash escaped the
        # NUL that ends it (the NUL delimiter of a block ending in "^^").
        run = _cstr(buf, ptr)
        last_quote = run.rfind("'")  # strchr(ptr + 1, '\'') finds one iff it is after ptr
        n = len(run)
        i = 0
        while i < n:
            c = run[i]
            if c != _ESCAPE_META and c != "'":
                # Up to the next backslash or quote: copied; "end" follows every
                # character but a space outside quotes.
                special = _CLEANUP_SPECIALS.search(run, i)
                stop = n if special is None else special.start()
                plain = run[i:stop]
                kept.append(plain)
                if inside_quotes:
                    end = dest + len(plain)
                elif visible := len(plain.rstrip(" ")):
                    end = dest + visible
                dest += len(plain)
                i = stop
                continue
            if c == _ESCAPE_META:
                raw = run[i + 1] if i + 1 < n else _NUL
                # NOTE: C tests (delim && e == delim), which a NUL delimiter never passes;
                # this emulation has always let it pass, and still does.
                out = raw if delim is not None and raw == delim else _CLEANUP_ESCAPES.get(raw)
                if out is not None:
                    kept.append(out)
                    dest += 1
                    end = dest
                    i += 2
                    continue
            if c == "'" and (inside_quotes or last_quote > i):
                inside_quotes = not inside_quotes
                if inside_quotes:
                    end = dest
            else:  # a lone quote, or a backslash that escapes nothing
                kept.append(c)
                dest += 1
                end = dest
            i += 1
        ptr += i
    if dest != ptr:  # else every kept character is already where it was read
        buf[start:dest] = "".join(kept)
    if end is not None:
        buf[end] = _NUL
    return start


@_c_string_entry
def cleanup_separated_string(text: str, delim: str | None) -> str:
    """``cleanup_separated_string``: drop leading spaces and trailing spaces outside
    quotes, remove a single quote that has a partner later in the text (or closes
    one), and turn ``\\'`` ``\\"`` ``\\\\`` ``\\<delim>`` ``\\n`` ``\\r`` ``\\t`` ``\\s``
    into their character; any other backslash stays. ``delim`` None is the blank
    splitter's 0."""
    buf = _buffer(text)
    return _cstr(buf, _cleanup(buf, 0, delim))


def _tokenize_char(buf: list[str], index: int, delim: str, arraylen: int) -> list[int]:
    """``separate_string_char_delim`` on the C string at ``index``; returns where the
    cleaned tokens start."""
    specials = _strpbrk(_ESCAPE_META + "'" + delim)
    tokens: list[int] = []
    ptr = index
    find_delim = False
    inside_quotes = False
    while buf[ptr] != _NUL and len(tokens) < arraylen:
        # One run; the loop comes back for the next only when a backslash made the
        # tokenizer step over the NUL that ends it.
        run = _cstr(buf, ptr)
        last_quote = run.rfind("'")  # strchr(ptr + 1, '\'') finds one iff it is after ptr
        n = len(run)
        i = 0
        while i < n and len(tokens) < arraylen:
            if not find_delim:
                tokens.append(ptr + i)
                find_delim = True
                continue
            c = run[i]
            if c != _ESCAPE_META and c != "'" and c != delim:
                special = specials.search(run, i)  # nothing to do until there
                if special is None:
                    i = n
                    break
                i = special.start()
                c = run[i]
            if c == _ESCAPE_META:
                i += 1
            elif c == "'" and (inside_quotes or last_quote > i):
                inside_quotes = not inside_quotes
            elif c == delim and not inside_quotes:
                buf[ptr + i] = _NUL
                find_delim = False
            i += 1
        ptr += i
    return [_cleanup(buf, token, delim) for token in tokens]


_START, _SKIP_INITIAL, _FIND_DELIM, _SKIP_ENDING = range(4)
_BLANK_SPECIALS = _strpbrk(_ESCAPE_META + "' ")


def _tokenize_blank(buf: list[str], index: int, arraylen: int) -> list[int]:
    """``separate_string_blank_delim`` on the C string at ``index``; returns where the
    cleaned tokens start."""
    state = _START
    tokens: list[int] = []
    ptr = index
    inside_quotes = False
    while buf[ptr] != _NUL and len(tokens) < arraylen:
        # One run; the loop comes back for the next only when a backslash made the
        # tokenizer step over the NUL that ends it.
        run = _cstr(buf, ptr)
        n = len(run)
        i = 0
        while i < n and len(tokens) < arraylen:
            c = run[i]
            if state == _START:
                tokens.append(ptr + i)
                state = _SKIP_INITIAL
            elif state == _SKIP_INITIAL:
                if c == " ":
                    i += 1
                else:
                    state = _FIND_DELIM
            elif state == _FIND_DELIM:
                if c != _ESCAPE_META and c != "'" and c != " ":
                    special = _BLANK_SPECIALS.search(run, i)  # nothing to do until there
                    if special is None:
                        i = n
                        break
                    i = special.start()
                    c = run[i]
                if c == _ESCAPE_META:
                    i += 1
                elif c == "'":
                    inside_quotes = not inside_quotes
                elif c == " " and not inside_quotes:
                    buf[ptr + i] = _NUL
                    state = _SKIP_ENDING
                i += 1
            elif c == " ":
                i += 1
            else:
                state = _START
        ptr += i
    return [_cleanup(buf, token, None) for token in tokens]


def _check_delim(delim: str) -> None:
    if len(delim) != 1 or ord(delim) > 0x7F:
        raise DialStringError(
            f"separator {delim!r}: FreeSWITCH would split on its first UTF-8 byte (not modelled)", cause=None
        )


def _separate_string(buf: list[str], index: int, delim: str, arraylen: int) -> list[int]:
    """``switch_separate_string`` on the C string at ``index``."""
    if buf[index] == "^" and buf[index + 1] == "^":
        p = index + 2
        if buf[p] != _NUL and buf[p + 1] != _NUL:
            delim = buf[p]
            index = p + 1
    if delim != _NUL:
        _check_delim(delim)
    if delim == " ":
        return _tokenize_blank(buf, index, arraylen)
    return _tokenize_char(buf, index, delim, arraylen)


@_c_string_entry
def separate_string(text: str, delim: str, arraylen: int) -> list[str]:
    """``switch_separate_string``: at most ``arraylen`` tokens (the last one keeps
    the rest of the text), each cleaned by :func:`cleanup_separated_string`. A
    leading ``^^X`` with at least one character after ``X`` makes ``X`` the
    delimiter. A space delimiter selects the blank splitter: runs of spaces are one
    separator, and every single quote toggles quoting, with no look-ahead."""
    buf = _buffer(text)
    return [_cstr(buf, i) for i in _separate_string(buf, 0, delim, arraylen)]


def split_arguments(text: str, arraylen: int = ORIGINATE_MAX_ARGS) -> list[str]:
    """The blank split ``originate_function`` applies to its arguments."""
    return separate_string(text, " ", arraylen)


def separate_string_string(text: str, delim: str, arraylen: int) -> list[str]:
    """``switch_separate_string_string``: plain split on a multi-character
    delimiter, at most ``arraylen`` pieces, no quotes, no escapes, no cleanup."""
    if not delim:
        raise ValueError("empty delimiter")
    return text.split(delim, arraylen - 1) if arraylen > 0 else []


def _find_end_paren(buf: list[str], index: int, open_: str, close: str) -> int | None:
    """``switch_find_end_paren`` on the C string at ``index``."""
    s = index
    while buf[s] == " ":
        s += 1
    if buf[s] != open_:
        return None
    brackets = _strpbrk(open_ + close + _NUL)
    depth = 1
    e = s + 1
    size = 64
    while chunk := "".join(buf[e : e + size]):
        # The C loop stops at the balancing close or at the NUL; read up to there in
        # doubling slices, so that a long string after the block costs nothing extra.
        for found in brackets.finditer(chunk):
            c = found.group()
            if c == _NUL:
                return e + found.start() if close == _NUL else None
            if c == open_ and open_ != close:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return e + found.start()
        e += size
        size *= 2
    raise _past_end("read")  # e is past the NUL (open_ was the NUL)


@_c_string_entry
def find_end_paren(text: str, open_: str, close: str) -> int | None:
    """``switch_find_end_paren``: after leading spaces ``text`` must start with
    ``open_``; returns the index of the ``close`` that balances it (nesting counted,
    quotes and backslashes ignored), or None."""
    return _find_end_paren(_buffer(text), 0, open_, close)


def _strchr_strict(buf: list[str], index: int, find: str, allowed: str) -> int | None:
    """``switch_strchr_strict``."""
    p = index
    if buf[p] == _NUL:
        return None
    while (c := buf[p]) != _NUL:
        if c == find:
            break
        if c not in allowed:
            return None
        p += 1
    return p


def _ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as C's ``tolower`` (``str.lower`` is that for ASCII text)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _add_header(headers: list[tuple[str, str]], name: str, value: str) -> None:
    """``switch_event_add_header_string(e, SWITCH_STACK_BOTTOM, name, value)``."""
    if "[" in name or value.startswith("ARRAY::"):
        raise DialStringError(f"array header {name!r}={value!r} is not modelled", cause=None)
    if value == "":
        lowered = _ascii_lower(name)
        headers[:] = [(n, v) for n, v in headers if _ascii_lower(n) != lowered]
        return
    headers.append((name, value))


def _create_brackets(
    buf: list[str], index: int, a: str, b: str, c: str, headers: list[tuple[str, str]]
) -> int:
    """``switch_event_create_brackets`` with dup=SWITCH_FALSE: returns where the
    data after the block starts."""
    end = _find_end_paren(buf, index, a, b)
    check_a = end
    while check_a is not None and (check_b := _strchr_strict(buf, check_a, a, " ")) is not None:
        found = _find_end_paren(buf, check_b, a, b)
        if found is None:
            raise DialStringError("FreeSWITCH would loop forever in switch_event_create_brackets", cause=None)
        check_a = found
    if check_a is not None:
        end = check_a
    if end is None:
        raise DialStringError(f"Parse Error! (no {b!r} closes the {a!r} block)")
    next_: int | None = end
    vdata = index + 1
    buf[end] = _NUL
    end += 1
    vnext: int | None = None
    while True:
        if next_ is not None:
            buf[next_] = _NUL
            next_ += 1
            pnext = _strchr_strict(buf, next_, a, " ")
            if pnext is not None:
                next_ = pnext + 1
            vnext = _find_end_paren(buf, next_, a, b)
            next_ = None
        if buf[vdata] == "^" and buf[vdata + 1] == "^":
            vdata += 2
            c = buf[vdata]
            vdata += 1
        for token in _separate_string(buf, vdata, c, MAX_BRACKET_VARS):
            inner = _separate_string(buf, token, "=", 2)
            if len(inner) == 2:
                _add_header(headers, _cstr(buf, inner[0]), _cstr(buf, inner[1]))
        if vnext is None:
            break
        vdata = vnext
        vnext = None
    return end


@_c_string_entry
def parse_variable_block(
    text: str, open_: str = "{", close: str = "}", separator: str = ","
) -> tuple[dict[str, str], str]:
    """One ``switch_event_create_brackets`` call on ``text`` (which must start with
    ``open_``): the variables it yields (a later duplicate wins, names compare
    without case, as on a channel) and the text after the block."""
    buf = _buffer(text)
    headers: list[tuple[str, str]] = []
    rest = _create_brackets(buf, 0, open_, close, separator, headers)
    return _channel_view(headers, check_vars=False), _cstr(buf, rest)


def switch_true(expr: str | None) -> bool:
    """``switch_true``."""
    if expr is None:
        return False
    if _ascii_lower(expr) in _TRUE_WORDS:
        return True
    return _is_number(expr) and atoi(expr) != 0


def _is_number(text: str) -> bool:
    if text[:1] in ("-", "+"):
        text = text[1:]
    return all(ch == "." or "0" <= ch <= "9" for ch in text)


def atoi(text: str) -> int:
    """C ``atoi``: leading whitespace, an optional sign, then decimal digits; 0 if none."""
    i = 0
    while i < len(text) and text[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < len(text) and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    j = i
    while j < len(text) and "0" <= text[j] <= "9":
        j += 1
    return sign * int(text[i:j]) if j > i else 0


def string_var_check(value: str) -> bool:
    """``switch_string_var_check_const``: a ``$`` followed (backslashes allowed in
    between) by ``{``."""
    if "$" not in value:
        return False
    dollar = False
    for ch in value:
        if ch == "$":
            dollar = True
        elif dollar:
            if ch == "{":
                return True
            if ch != "\\":
                dollar = False
    return False


def _channel_view(headers: list[tuple[str, str]], check_vars: bool) -> dict[str, str]:
    """Apply headers with ``switch_channel_set_variable_var_check`` in order."""
    result: dict[str, str] = {}
    spelling: dict[str, str] = {}  # ASCII-lower-cased name -> its key in result
    for name, value in headers:
        if not name:
            continue
        lowered = _ascii_lower(name)
        existing = spelling.pop(lowered, None)
        if existing is not None:
            del result[existing]
        if check_vars and string_var_check(value):
            log.debug("channel variable %s refused: value contains ${", name)
            continue
        result[name] = value
        spelling[lowered] = name
    return result


def _first_header(headers: list[tuple[str, str]], name: str) -> str | None:
    lowered = _ascii_lower(name)
    for n, v in headers:
        if _ascii_lower(n) == lowered:
            return v
    return None


def _mark_bracket_commas(buf: list[str], index: int) -> None:
    # Nothing happens before the first '[' (it resets "quoted"): start there.
    first = _cstr(buf, index).find("[")
    if first == -1:
        return
    p = index + first
    end: int | None = None
    quoted = False
    alt = False
    while (c := buf[p]) != _NUL:
        if end is None and c == "[":
            end = _find_end_paren(buf, p, "[", "]")
            alt = buf[p + 1] == "^" and buf[p + 2] == "^"
            quoted = False
        if c == "'":
            quoted = not quoted
        if end is not None and p < end and c == "," and buf[p - 1] != "\\":
            buf[p] = QUOTED_ESC_COMMA if quoted or alt else UNQUOTED_ESC_COMMA
        if p == end:
            end = None
        p += 1


def _skip_spaces(buf: list[str], index: int) -> int:
    while buf[index] == " ":
        index += 1
    return index


@_c_string_entry
def parse_dial_string(text: str) -> DialString:
    """The dial string as ``switch_ivr_originate`` (no originating session) reads it.

    Raises DialStringError for ``Parse Error!`` (an unclosed block), an empty URL,
    and enterprise (``:_:``) dial strings, which are not modelled. FreeSWITCH finds a
    broken ``[]`` block only when it reaches that leg, after dialling the groups and
    legs before it; here the whole dial string is refused up front.
    """
    if ENTERPRISE_DELIM in text.split(_NUL, 1)[0]:
        raise DialStringError("enterprise originate (:_:) is not modelled", cause=None)
    odata = _buffer(text)
    data = _skip_spaces(odata, 0)
    check_vars = "origination_nested_vars=true" not in _ascii_lower(_cstr(odata, data))
    headers: list[tuple[str, str]] = []
    if odata[data] == "<":
        while odata[data] == "<":
            data = _create_brackets(odata, data, "<", ">", ",", headers)
    while odata[data] == "{":
        data = _create_brackets(odata, data, "{", "}", ",", headers)
    data = _skip_spaces(odata, data)
    if odata[data] == _NUL:
        raise DialStringError("No origination URL specified!")

    clobber = switch_true(_first_header(headers, "local_var_clobber"))
    loop_data = _buffer(_cstr(odata, data))
    groups: list[tuple[Leg, ...]] = []
    for pipe in _separate_string(loop_data, 0, "|", MAX_PEERS):
        _mark_bracket_commas(loop_data, pipe)
        legs: list[Leg] = []
        for peer in _separate_string(loop_data, pipe, ",", MAX_PEERS):
            chan_type = _skip_spaces(loop_data, peer)
            local: list[tuple[str, str]] = []
            while loop_data[chan_type] == "[":
                bend = _find_end_paren(loop_data, chan_type, "[", "]")
                if bend is not None:
                    p = chan_type + 1
                    while p < bend and loop_data[p] != _NUL:
                        if loop_data[p] == QUOTED_ESC_COMMA:
                            loop_data[p] = ","
                        p += 1
                chan_type = _create_brackets(loop_data, chan_type, "[", "]", UNQUOTED_ESC_COMMA, local)
            chan_type = _skip_spaces(loop_data, chan_type)
            order = headers + local if clobber else local + headers
            legs.append(
                Leg(
                    endpoint=_cstr(loop_data, chan_type),
                    variables=_channel_view(order, check_vars),
                    leg_variables=_channel_view(local, check_vars=False),
                )
            )
        groups.append(tuple(legs))
    return DialString(global_variables=_channel_view(headers, check_vars=False), groups=tuple(groups))


def strip_whitespace(text: str) -> str:
    """``switch_strip_whitespace``, which ``switch_api_execute`` applies to an API
    command's argument: CR, LF, TAB, space and VT at both ends."""
    return text.strip(_STRIP_WHITESPACE)


def parse_originate(args: str) -> Originate:
    """Read ``args`` exactly as ``originate_function`` does.

    ``args`` is the argument of one already-framed ESL command: the text after
    ``originate `` on the frame's first line. The event socket ends a command frame
    at the first blank line, so a dial string that smuggles ``\\n\\n`` becomes two
    commands before any of this runs; ``args`` containing a line feed is therefore
    refused with a plain ValueError (a framing bug in the caller).

    Raises UsageError where FreeSWITCH answers ``-USAGE`` (no arguments, fewer than
    two or more than seven after the blank split, e.g. an unbalanced single quote
    that swallows the rest) and DialStringError where it answers ``-ERR`` before
    creating a channel.
    """
    if "\n" in args:
        raise ValueError("originate arguments span more than one line; frame the command first")
    cmd = strip_whitespace(args.split(_NUL, 1)[0])
    if not cmd:
        raise UsageError(f"-USAGE: {ORIGINATE_SYNTAX}")
    argv: list[str | None] = list(split_arguments(cmd))
    if len(argv) < 2 or len(argv) > 7:
        raise UsageError(f"-USAGE: {ORIGINATE_SYNTAX}")
    argv = [None if a is not None and _ascii_lower(a) == "undef" else a for a in argv]
    argv += [None] * (7 - len(argv))
    aleg, exten, dialplan, context, cid_name, cid_num, timeout_arg = argv

    parts = parse_enterprise(aleg if aleg is not None else "")
    if exten is None:
        raise DialStringError("FreeSWITCH aborts on switch_assert(exten): the extension is 'undef'", cause=None)
    app: str | None = None
    app_args: str | None = None
    if exten.startswith("&") and len(exten) > 1:
        app_name = exten[1:].split(")", 1)[0]
        app, paren, rest = app_name.partition("(")
        app_args = rest if paren else None
        exten = None
    return Originate(
        dial=parts[0],
        app=app,
        app_args=app_args,
        exten=exten,
        dialplan=dialplan,
        context=context,
        cid_name=cid_name,
        cid_num=cid_num,
        timeout=atoi(timeout_arg) if timeout_arg is not None else None,
        parts=parts,
        app_refused=app is not None and app_data_refused(app_args),
    )


# --- later stages: variable expansion, application data, the enterprise split ------------------


def has_escaped_data(text: str) -> bool:
    """``switch_string_has_escaped_data``: a backslash before ``\\\\ n s t '``."""
    i = text.find(_ESCAPE_META)
    while i != -1:
        if text[i + 1 : i + 2] in ("\\", "n", "s", "t", "'") and i + 1 < len(text):
            return True
        i = text.find(_ESCAPE_META, i + 1)
    return False


class ApiExpansion(DialStringError):
    """``${api args}`` in text being expanded: FreeSWITCH would run the API
    command ``api`` (with ``args``) and insert what it prints."""

    def __init__(self, api: str, args: str) -> None:
        super().__init__(f"expansion runs the API {api!r} with {args!r}", cause=None)
        self.api = api
        self.api_args = args


Lookup = Callable[[str], "str | None"]
MAX_EXPAND_DEPTH = 100


def expand_variables(text: str, lookup: Lookup, global_lookup: Lookup | None = None, recur: int = 0) -> str:
    """``switch_channel_expand_variables_check`` for a channel whose variables
    ``lookup`` returns (None: unset); ``global_lookup`` serves ``$${name}``.

    Nothing happens unless the text holds ``${`` (``string_var_check``) or an
    escape of ``has_escaped_data``. Then, left to right: ``\\\\$`` is a literal
    ``$`` (``\\\\$$`` too); ``\\\\'`` is dropped, both characters; ``\\\\\\\\`` is one
    backslash; any other backslash stays. ``$$`` not followed by ``{`` is one
    ``$``. ``${name}`` is the variable's value, itself expanded again (so its
    own backslashes are read by these rules once more); ``${name:off:len}`` and
    ``${name[i]}`` are not modelled for arrays; ``${api args}`` raises
    :class:`ApiExpansion`."""
    if recur > MAX_EXPAND_DEPTH or not text:
        return text
    text = text.split(_NUL, 1)[0]
    if not (string_var_check(text) or has_escaped_data(text)):
        return text
    out: list[str] = []
    n = len(text)
    p = 0
    nv = False

    def at(i: int) -> str:
        return text[i] if i < n else _NUL

    while p < n:
        is_global = False
        vtype = 0
        if text[p] == _ESCAPE_META:
            nxt = at(p + 1)
            if nxt == "$":
                nv = True
                p += 1
                if at(p + 1) == "$":
                    p += 1
            elif nxt == "'":
                p += 2
                continue
            elif nxt == _ESCAPE_META:
                out.append(_ESCAPE_META)
                p += 2
                continue
        if text[p] == "$" and not nv:
            if at(p + 1) == "$":
                p += 1
                is_global = True
            if at(p + 1) != _NUL:
                if at(p + 1) == "{":
                    vtype = 3 if is_global else 1
                else:
                    nv = True
            else:
                nv = True
        if nv:
            out.append(text[p])
            nv = False
            p += 1
            continue
        if vtype:
            s = p + 1
            br = 0
            if at(s) == "{":
                br = 1
                s += 1
            e = s
            name_end = None
            while e < n:
                if br == 1 and text[e] == "}":
                    br = 0
                    name_end = e
                    e += 1
                    break
                if br > 0:
                    if e != s and text[e] == "{":
                        br += 1
                    elif br > 1 and text[e] == "}":
                        br -= 1
                e += 1
            vname = text[s:name_end if name_end is not None else e]
            p = e
            api_args: str | None = None
            for j, ch in enumerate(vname):
                if ch == " " or ch == "(":
                    depth = 1 if ch == "(" else 0
                    head, rest = vname[:j].rstrip(" "), vname[j + 1 :]
                    k = 0
                    while k < len(rest):
                        if rest[k] == "(":
                            depth += 1
                        elif depth > 1 and rest[k] == ")":
                            depth -= 1
                        elif depth == 1 and rest[k] == ")":
                            rest = rest[:k]
                            break
                        k += 1
                    vname, api_args = head, rest
                    break
            if api_args is not None:
                raise ApiExpansion(expand_variables(vname, lookup, global_lookup, recur + 1),
                                   expand_variables(api_args, lookup, global_lookup, recur + 1))
            vname = expand_variables(vname, lookup, global_lookup, recur + 1)
            if ":" in vname or "[" in vname:
                raise DialStringError(f"expansion of ${{{vname}}} (offsets, arrays) is not modelled", cause=None)
            if vtype == 3:
                value = global_lookup(vname) if global_lookup is not None else None
            else:
                value = lookup(vname)
            if value:
                out.append(expand_variables(value, lookup, global_lookup, recur + 1))
            if p >= n:
                break
            if text[p] == "$":
                continue  # p-- and the loop's p++: read this "$" again
            out.append(text[p])
            p += 1
            continue
        out.append(text[p])
        p += 1
    return "".join(out)


def app_data_refused(data: str | None) -> bool:
    """``switch_caller_extension_add_application``: data containing ``\\\\'``
    is refused ("Invalid character sequence in data string") and the
    application is not added."""
    return data is not None and "\\'" in data


def parse_enterprise(text: str) -> tuple[DialString, ...]:
    """The dial string as ``switch_ivr_originate`` reads it, enterprise form
    included: if ``:_:`` occurs anywhere (``strstr`` on the raw text, before any
    quote or escape is read), leading ``<...>`` blocks apply to every part, the
    rest is cut at each ``:_:`` and every part is originated at once as a dial
    string of its own (with ``ignore_early_media=true``); a part that cannot
    be read carries its ``error``. One part otherwise."""
    raw = text.split(_NUL, 1)[0]
    if ENTERPRISE_DELIM not in raw:
        return (parse_dial_string(raw),)
    buf = _buffer(raw)
    data = _skip_spaces(buf, 0)
    headers: list[tuple[str, str]] = []
    while buf[data] == "<":
        data = _create_brackets(buf, data, "<", ">", ",", headers)
    data = _skip_spaces(buf, data)
    headers.append(("ignore_early_media", "true"))
    shared = _channel_view(headers, check_vars=False)
    parts: list[DialString] = []
    for piece in separate_string_string(_cstr(buf, data), ENTERPRISE_DELIM, MAX_PEERS):
        try:
            dial = parse_dial_string(piece)
        except DialStringError as exc:
            parts.append(DialString({}, (), error=exc.cause or PARSE_ERROR_CAUSE))
            continue
        groups = tuple(
            tuple(Leg(leg.endpoint, {**shared, **leg.variables}, leg.leg_variables) for leg in group)
            for group in dial.groups
        )
        parts.append(DialString({**shared, **dial.global_variables}, groups))
    return tuple(parts)
