"""The API commands the simulator answers (``api`` and ``bgapi``), with
FreeSWITCH's own reply texts (mod_commands.c, mod_event_socket.c), byte for
byte as recorded in the transcripts. Each command is a function of the
switch and the command's argument; :data:`API` names them.

Deliberate simplifications: the core database is not asynchronous (``show
calls`` lists a call as soon as its channels exist); ``uuid_transfer``
moves the named channel only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import gevent
import gevent.event

from ..protocol import format_json_event, format_plain_event
from .apps import schedule_delay
from .channel import Channel, hangup_cause
from .dialparse import (
    DialStringError,
    Originate,
    UsageError,
    parse_originate,
    separate_string,
    string_var_check,
)
from .journal import ATTEMPT_VAR, JOB_VAR
from .originate import DEFAULT_CALLER_ID, originate_variables, timeout_seconds
from .switchboard import OriginateRecord

if TYPE_CHECKING:
    from .server import FakeSwitch

log = logging.getLogger(__name__)

VERSION = "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)"
_STATUS_VERSION = "FreeSWITCH (Version 1.11.3-dev  64bit) is ready"

USAGE_ORIGINATE = (
    "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>]"
    " [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
)
USAGE_SHOW = (
    "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels "
    "[count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|"
    "aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|"
    "limits|status\n"
)
USAGE_FSCTL = (
    "-USAGE: [api_expansion [on|off]|recover|send_sighup|hupall|pause [inbound|outbound]|"
    "resume [inbound|outbound]|shutdown [cancel|elegant|asap|now|restart]|uuid_version [4|7]|"
    "sps|sps_peak_reset|sync_clock|sync_clock_when_idle|reclaim_mem|max_sessions|"
    "min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|min_idle_cpu|"
    "loglevel [level]|debug_level [level]|mdns_resolve [enable|disable]]\n"
)
USAGE_SCHED_HANGUP = "-USAGE: [+]<time> <uuid> [<cause>]\n"
USAGE_SCHED_BROADCAST = "-USAGE: [+]<time> <uuid> <path> [aleg|bleg|both]\n"
USAGE_BROADCAST = "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
USAGE_TRANSFER = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"

_CALL_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest presence_id "
    "presence_data accountcode callstate callee_name callee_num callee_direction call_uuid hostname "
    "sent_callee_name sent_callee_num b_uuid b_direction b_created b_created_epoch b_name b_state "
    "b_cid_name b_cid_num b_ip_addr b_dest b_presence_id b_presence_data b_accountcode b_callstate "
    "b_callee_name b_callee_num b_callee_direction b_sent_callee_name b_sent_callee_num "
    "call_created_epoch"
).split()
_CHANNEL_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest application "
    "application_data dialplan context read_codec read_rate read_bit_rate write_codec write_rate "
    "write_bit_rate secure hostname presence_id presence_data accountcode callstate callee_name "
    "callee_num callee_direction call_uuid sent_callee_name sent_callee_num initial_cid_name "
    "initial_cid_num initial_ip_addr initial_dest initial_dialplan initial_context"
).split()

_JOB_ID = re.compile(JOB_VAR + r"=([^,}\s]+)")


def background_job(sw: FakeSwitch, cmd: str, arg: str, job: str) -> None:
    """Run one bgapi command and fire its BACKGROUND_JOB with the result."""
    def finish(result: str) -> None:
        if cmd == "originate":
            sw.board.stats.result_log.append(time.time())
        h = sw.board.headers.base("BACKGROUND_JOB")
        h.append(("Job-UUID", job))
        h.append(("Job-Command", cmd))
        if arg:
            h.append(("Job-Command-Arg", arg))
        sw._fire("BACKGROUND_JOB", h, result, None)

    if cmd == "originate":
        originate(sw, arg, job, finish)
    else:
        finish(sw.api(cmd, arg, None))


def originate(sw: FakeSwitch, arg: str, job: str | None, done: Callable[[str], None]) -> None:
    """Run one ``originate``: ``done(result)`` once its result is known;
    the answered channel's application then runs in the same greenlet.
    Every originate is recorded (``FakeSwitch.originates``, ``stats``, the
    journal), readable or not."""
    rec = sw.board.record(arg, job)
    try:
        parsed = parse_originate(arg)
    except (UsageError, DialStringError) as exc:
        if isinstance(exc, UsageError):
            rec.result = USAGE_ORIGINATE
        else:
            log.info("originate: Parse Error! %s", exc)
            rec.result = "-ERR %s\n" % (exc.cause or "DESTINATION_OUT_OF_ORDER")
        found = _JOB_ID.search(arg)
        job_id = found.group(1) if found else None
        sw.board.stats.originate_log.append((rec.time, job_id or ""))
        done = _journaled(sw, job_id, None, job, done)
        done(rec.result)
        return
    rec.variables = originate_variables(parsed)
    sw.board.stats.originate_log.append((rec.time, rec.variables.get(JOB_VAR, "")))
    done = _journaled(sw, rec.variables.get(JOB_VAR), rec.variables.get(ATTEMPT_VAR), job, done)
    _run(sw, rec, parsed, done)


def _run(sw: FakeSwitch, rec: OriginateRecord, parsed: Originate, done: Callable[[str], None]) -> None:
    """Dial a parsed originate; ``done(result)`` as soon as the result text is
    known (``+OK <uuid>\\n`` or ``-ERR <CAUSE>\\n``), then the A leg's
    application or extension (:class:`.Dialplan`)."""
    board = sw.board
    board.in_flight += 1
    try:
        positional = parsed.timeout
        timelimit = timeout_seconds(str(positional)) if positional else 60.0
        caller_id = (parsed.cid_name or DEFAULT_CALLER_ID[0], parsed.cid_num or DEFAULT_CALLER_ID[1])
        parts = parsed.parts or (parsed.dial,)
        winner, cause = sw.dialer.dial_parts(parts, None, timelimit, caller_id)
    except BaseException:
        board.in_flight -= 1
        raise
    if winner is None or winner.a is None:
        rec.result = "-ERR %s\n" % cause
        board.in_flight -= 1
        done(rec.result)
        return
    rec.result = "+OK %s\n" % winner.a.uuid
    rec.uuid = winner.a.uuid
    done(rec.result)
    try:
        sw.dialplan.run(winner, parsed)
    finally:
        board.in_flight -= 1


def _journaled(sw: FakeSwitch, job_id: str | None, attempt: str | None, job: str | None,
               done: Callable[[str], None]) -> Callable[[str], None]:
    """Journal the originate now and ``done``'s result when it comes."""
    journal = sw.journal
    if journal is None:
        return done
    journal.originate(job_id, attempt, job)

    def journaled(result: str) -> None:
        if sw.journal is journal:
            journal.result(job_id, attempt, job, result)
        done(result)
    return journaled


def _api_originate(sw: FakeSwitch, arg: str) -> str:
    result = gevent.event.AsyncResult()
    sw.board.spawn(originate, sw, arg, None, result.set)
    try:
        value: str = result.get(timeout=3600)
    except gevent.Timeout:
        return "-ERR NO_ANSWER\n"
    return value


def _status(sw: FakeSwitch, arg: str) -> str:
    up = time.time() - sw.started
    parts = []
    secs = int(up)
    years, secs = divmod(secs, 365 * 86400)
    days, secs = divmod(secs, 86400)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    ms = int((up - int(up)) * 1000)
    us = int((up - int(up)) * 1_000_000) % 1000
    for value, unit in ((years, "year"), (days, "day"), (hours, "hour"), (minutes, "minute"),
                        (secs, "second"), (ms, "millisecond"), (us, "microsecond")):
        parts.append("%d %s%s" % (value, unit, "" if value == 1 else "s"))
    st = sw.board.stats
    now = int(time.time())
    recent = [n for s, n in st.sessions_per_second.items() if now - s < 300]
    last5 = max(recent) if recent else 0
    current = st.sessions_per_second.get(now, 0)
    return (
        "UP %s\n%s\n%d session(s) since startup\n"
        "%d session(s) - peak %d, last 5min %d \n"
        "%d session(s) per Sec out of max %d, peak %d, last 5min %d \n"
        "%d session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n"
    ) % (", ".join(parts), _STATUS_VERSION, st.sessions_since_startup,
         len(sw.channels), st.peak_sessions, st.peak_sessions,
         current, sw.board.sps, st.peak_sps, last5, sw.board.max_sessions)


def _global_getvar(sw: FakeSwitch, arg: str) -> str:
    if not arg:
        return "".join("%s=%s\n" % kv for kv in sw._global_vars())
    value = dict(sw._global_vars()).get(arg)
    return "-ERR no reply\n" if value is None else value


def _row(sw: FakeSwitch, ch: Channel, columns: list[str]) -> dict[str, str]:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ch.created_us / 1e6))
    name, num = (ch.callee_name, ch.callee_num) if ch.flipped else (ch.cid_name, ch.cid_num)
    values = {
        "uuid": ch.uuid, "direction": ch.direction, "created": created,
        "created_epoch": str(ch.created_us // 1_000_000), "name": ch.name,
        "state": "CS_EXECUTE" if ch.answered else "CS_ROUTING", "cid_name": name, "cid_num": num,
        "dest": ch.dest, "callstate": "ACTIVE" if ch.answered else "RINGING",
        "callee_name": "" if ch.flipped else ch.callee_name,
        "callee_num": ch.cid_num if ch.flipped else ch.callee_num,
        "callee_direction": "RECV" if ch.flipped else "",
        "call_uuid": ch.uuid if ch.direction == "outbound" and ch.call_uuid == ch.uuid else "",
        "hostname": sw.hostname, "application": ch.app or "", "dialplan": "xml",
        "context": ch.context, "read_codec": "L16", "read_rate": "8000",
        "read_bit_rate": "128000", "write_codec": "L16", "write_rate": "8000",
        "write_bit_rate": "128000", "initial_cid_name": ch.cid_name,
        "initial_cid_num": ch.cid_num, "initial_dest": ch.dest, "initial_dialplan": "xml",
        "initial_context": ch.context,
    }
    return {c: values.get(c, "") for c in columns}


def _show(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    if not words:
        return USAGE_SHOW
    what = words[0].lower()
    rest = [w.lower() for w in words[1:]]
    if what in ("calls", "channels", "detailed_calls"):
        columns = _CHANNEL_COLUMNS if what == "channels" else _CALL_COLUMNS
        rows = [_row(sw, ch, columns) for ch in sw.channels.values()]
    elif what in ("bridged_calls", "detailed_bridged_calls"):
        columns = _CALL_COLUMNS
        rows = [_row(sw, ch, columns) for ch in sw.channels.values()
                if ch.bridge is not None and ch.bridge_role == "originator"]
    else:
        return USAGE_SHOW
    if rest[:1] == ["count"]:
        return "\n%d total.\n" % len(rows)
    if rest[:2] == ["as", "json"]:
        if not rows:
            return '{"row_count": 0}\n'
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
    if not rows:
        return "\n0 total.\n"
    lines = [",".join(columns)] + [",".join(r[c] for c in columns) for r in rows]
    return "%s\n\n%d total.\n" % ("\n".join(lines), len(rows))


def _channel(sw: FakeSwitch, arg: str) -> Channel | None:
    return sw.channels.get(arg.split(" ", 1)[0]) if arg else None


def _uuid_kill(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    ch = _channel(sw, arg)
    if ch is None:
        return "-ERR No such channel!\n"
    sw.board.hangup(ch, hangup_cause(words[1] if len(words) > 1 else None))
    return "+OK\n"


def _uuid_transfer(sw: FakeSwitch, arg: str) -> str:
    """``uuid_transfer <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]``
    (the A leg only: -bleg and -both are refused here)."""
    words = arg.split()
    if len(words) < 2 or len(words) > 5:
        return USAGE_TRANSFER
    if words[1].startswith("-"):
        return "-ERR the simulator transfers the named channel only\n"
    ch = _channel(sw, arg)
    if ch is None or not ch.alive:
        return "-ERR No such channel!\n"
    exten = words[1]
    dialplan = words[2] if len(words) > 2 else "XML"
    context = words[3] if len(words) > 3 else "default"
    sw.dialplan.transfer(ch, exten, dialplan, context)
    return "+OK\n"


def _uuid_exists(sw: FakeSwitch, arg: str) -> str:
    return "true" if _channel(sw, arg) is not None else "false"


def _uuid_getvar(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    ch = _channel(sw, arg)
    if ch is None or len(words) < 2:
        return "-ERR No such channel!\n"
    return ch.variables.get(words[1], "_undef_")


def _uuid_setvar(sw: FakeSwitch, arg: str) -> str:
    """``uuid_setvar <uuid> <var> [value]`` as mod_commands reads it:
    ``switch_separate_string`` at blanks into at most three arguments
    (the value is the cleaned rest of the line). No value unsets the
    variable; a value with ``${`` is refused (switch_channel_set_variable
    logs it) and the answer is still ``+OK``."""
    try:
        words = separate_string(arg, " ", 3)
    except DialStringError:
        words = []
    if len(words) not in (2, 3) or not words[0]:
        return "-USAGE: <uuid> <var> [value]\n"
    ch = _channel(sw, words[0])
    if ch is None:
        return "-ERR No such channel!\n"
    if not words[1]:
        return "-ERR No variable specified\n"
    if len(words) == 3 and words[2]:
        if not string_var_check(words[2]):
            ch.variables[words[1]] = words[2]
    else:
        ch.variables.pop(words[1], None)
    return "+OK\n"


def _uuid_dump(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    ch = _channel(sw, arg)
    if ch is None:
        return "-ERR No such channel!\n"
    h = sw.board.headers.base("CHANNEL_DATA")
    h.extend(ch.channel_headers("CS_EXECUTE", "ACTIVE", "4"))
    if len(words) > 1 and words[1] == "json":
        return format_json_event(h)
    return format_plain_event(h)


def _hupall(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    cause = hangup_cause(words[0] if words else None, "MANAGER_REQUEST")
    if len(words) >= 3:
        sw.board.hupall(cause, words[1], words[2])
        return "+OK hangup all channels matching [%s]=[%s] with cause: %s\n" % (words[1], words[2], cause)
    sw.board.hupall(cause)
    return "+OK hangup all channels with cause %s\n" % cause


def _sched_hangup(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    delay = schedule_delay(words[0]) if words else None
    if delay is None or len(words) < 2:
        return USAGE_SCHED_HANGUP
    ch = sw.channels.get(words[1])
    if ch is None:
        return "-ERR No such channel!\n"
    sw.apps.sched_hangup(ch, delay, hangup_cause(words[2] if len(words) > 2 else None,
                                                    "ALLOTTED_TIMEOUT"))
    return "+OK\n"


def _uuid_broadcast(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    if len(words) < 2:
        return USAGE_BROADCAST
    ch = sw.channels.get(words[0])
    if ch is None:
        return "-ERR invalid uuid\n"
    sw.apps.broadcast(ch, words[1], 0.0, words[2] if len(words) > 2 else "aleg")
    return "+OK Message sent\n"


def _sched_broadcast(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    delay = schedule_delay(words[0]) if words else None
    if delay is None or len(words) < 3:
        return USAGE_SCHED_BROADCAST
    ch = sw.channels.get(words[1])
    if ch is None:
        return "-ERR invalid uuid\n"
    sw.apps.broadcast(ch, words[2], delay, words[3] if len(words) > 3 else "aleg")
    return "+OK Message scheduled\n"


def _fsctl(sw: FakeSwitch, arg: str) -> str:
    words = arg.split()
    if not words:
        return USAGE_FSCTL
    what = words[0].lower()
    if what == "sps":
        if len(words) > 1 and words[1].isdigit():
            sw.board.sps = int(words[1])
        return "+OK sessions per second: %d\n" % sw.board.sps
    if what == "max_sessions":
        if len(words) > 1 and words[1].isdigit():
            sw.board.max_sessions = int(words[1])
        return "+OK max sessions: %d\n" % sw.board.max_sessions
    if what == "shutdown":
        gevent.spawn_later(0.01, sw.shutdown_notice)
        return "+OK\n"
    if what == "hupall":
        sw.board.hupall("MANAGER_REQUEST")
        return "+OK\n"
    return USAGE_FSCTL


API: dict[str, Callable[[FakeSwitch, str], str]] = {
    "status": _status,
    "version": lambda sw, arg: VERSION + "\n",
    "originate": _api_originate,
    "uuid_exists": _uuid_exists,
    "uuid_kill": _uuid_kill,
    "uuid_transfer": _uuid_transfer,
    "uuid_getvar": _uuid_getvar,
    "uuid_setvar": _uuid_setvar,
    "uuid_dump": _uuid_dump,
    "hupall": _hupall,
    "show": _show,
    "sched_hangup": _sched_hangup,
    "uuid_broadcast": _uuid_broadcast,
    "sched_broadcast": _sched_broadcast,
    "fsctl": _fsctl,
    "global_getvar": _global_getvar,
    "db": lambda sw, arg: sw.db.api(arg),
    "hash": lambda sw, arg: sw.hash.api(arg),
    "echo": lambda sw, arg: arg,
}
