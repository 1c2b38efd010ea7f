"""A validated ``CallRequest`` → the ``originate`` command. The only place
FreeSWITCH dial-string syntax is written.

This module is the security boundary: everything a client sends can end up in
the command, and nothing it sends may change the command's structure.

Values are checked and escaped by ``escaping`` (the rounds each route
passes, and what no escape can carry); this module decides which route each
value takes (``value_rounds``) and writes the syntax around them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import PACKAGE_RECORDINGS_DIR
from .escaping import ARG_ROUNDS, EXPANDED, VAR_ROUNDS, encode_value

if TYPE_CHECKING:
    from .calls import CallRequest, Media, Party
    from .config import Config
    from .destinations import Destination

VAR_PREFIX = "eslengine_var_"
JOB_VAR = "eslengine_job_id"
LEG_VAR = "eslengine_leg"  # the party: a | b
ROLE_VAR = "eslengine_role"  # first (rung first) | second (connected when first answers)
ATTEMPT_VAR = "eslengine_attempt"  # 1 for the first placement of a job, 2 for its first retry, ...
# The worker that placed the call: its event socket passes only the events
# of channels carrying its own name (see Worker.start).
WORKER_VAR = "eslengine_worker"
# The dialplan extension (freeswitch-conf/dialplan/eslengine.xml) that plays
# the announcement to the first party and then bridges ${eslengine_bridge}.
CONNECT_EXTENSION = "eslengine_connect XML eslengine"
# A held first leg (the engine starts the second one) waits in park; if no
# transfer comes (the engine is gone for longer than a worker takes over
# its calls) the switch hangs it up after this many seconds.
PARK_TIMEOUT = 30

TONES = {
    "ring": "%(2000,4000,440,480)",
    "us-ring": "%(2000,4000,440,480)",
    "uk-ring": "%(400,200,400,450);%(400,2000,400,450)",
    "moh": "local_stream://moh",
    "beep": "tone_stream://%(500,0,800)",
}

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# Variables the switch reads through ${...} (the connect extension's actions,
# bridge ${eslengine_bridge}) or runs as application data: their values pass
# the expansion round before the block's own rounds.
BRIDGE_VAR = "eslengine_bridge"
# Set by the shipped dialplan's eslengine_connect_refused extension on a held
# first leg that parks again because the switch refused the second party's
# session (no channel created).
CONNECT_REFUSED_VAR = "eslengine_connect_refused"
# Marks a first leg the engine holds (originated into park), with its park
# timeout: what that extension re-arms before it parks the leg again.
PARK_TIMEOUT_VAR = "eslengine_park_timeout"
EXPANDED_VARS = frozenset({BRIDGE_VAR, "eslengine_announce", "eslengine_say", "eslengine_tts_engine",
                           "eslengine_tts_voice", "api_hangup_hook"})
EXPANDED_PREFIXES = ("execute_on_", "api_on_")

# The attempt marker: every leg of an attempt's first party records in the
# switch's mod_db (a sqlite table kept across restarts) that the switch
# created it, and again how it ended, under the key ``marker_key``:
#
# * ``api_on_originate`` (switch_ivr_originate, run with do_api_on on each
#   leg as soon as its channel exists, variables expanded):
#   ``up;<leg uuid>``;
# * ``api_hangup_hook`` (switch_core_session_hangup_state, after the
#   hangup cause and the timestamps are set, while the channel still
#   exists): ``end;<hangup_cause>;<answer_epoch>;<bridge_epoch>;
#   <last_bridge_hangup_cause>;<leg uuid>``.
#
# ``db select/<realm>/<key>`` reads it back (an empty body: no such key),
# ``db delete/<realm>/<key>`` drops it. The hooks hold ``${...}``, which
# FreeSWITCH refuses in an originate's variables unless
# ``origination_nested_vars=true`` (switch_channel_set_variable_var_check);
# nothing a client sends can hold ``${`` (``check_value``), nor name a
# variable (clients' names get VAR_PREFIX or ``sip_h_``).
MARKER_REALM = "eslengine"
MARKER_UP = "up"
MARKER_END = "end"
MARKER_CREATED_HOOK = "api_on_originate"
MARKER_HANGUP_HOOK = "api_hangup_hook"
NESTED_VARS = "origination_nested_vars"
# Names that start a switch-side action or unlock ``${`` in the originate:
# only this module sets them, never from a client's text.
HOOK_NAMES = (MARKER_CREATED_HOOK, MARKER_HANGUP_HOOK, "api_reporting_hook", "session_in_hangup_hook",
              "api_on_", "execute_on_", NESTED_VARS)


def value_rounds(name: str, rounds: tuple[str, ...]) -> tuple[str, ...]:
    """The rounds for variable ``name`` in a block read with ``rounds``."""
    if name in EXPANDED_VARS or name.lower().startswith(EXPANDED_PREFIXES):
        return (EXPANDED, *rounds)
    return rounds


def variable_block(variables: Iterable[tuple[str, str]], rounds: Iterable[str] = ARG_ROUNDS,
                   brackets: str = "{}") -> str:
    """``{name=value,...}`` with every value encoded; names must be safe."""
    rounds = tuple(rounds)
    parts = []
    for name, value in variables:
        if not _NAME.fullmatch(name):
            raise ValueError("unsafe channel variable name %r" % name)
        parts.append("%s=%s" % (name, encode_value(value, value_rounds(name, rounds))))
    return brackets[0] + ",".join(parts) + brackets[1]


def endpoint(dest: Destination, config: Config) -> str:
    """Where FreeSWITCH sends a leg: the route template for E.164 numbers,
    ``user/<ext>[@domain]`` for directory users, the SIP profile for URIs."""
    if dest.kind == "user":
        domain = dest.domain or config.user_domain
        text = "user/%s%s" % (dest.number, "@" + domain if domain else "")
    elif dest.kind == "sip":
        text = "sofia/%s/%s@%s" % (config.sip_profile, dest.number, dest.domain)
    else:
        text = config.route_template.format(gateway=config.gateway, number=dest.number.lstrip("+"), e164=dest.number)
    if not re.fullmatch(r"[A-Za-z0-9_.@+/:=-]+", text):
        raise ValueError("endpoint %r has characters a dial string cannot carry" % text)
    return text


def playable(media: Media) -> str:
    """What ``playback`` is given for a tone, a sound file or a URL."""
    if media.kind == "tone":
        return TONES[media.value]
    if media.kind == "url":
        return "http_cache://" + media.value
    return media.value


def recording_path(request: CallRequest, config: Config) -> str | None:
    """Where the switch writes the call's recording: ``config``'s
    recordings_dir (the worker gives each node's calls the node's own when
    the engine's is not set), else the packages' default."""
    if request.record is None:
        return None
    directory = config.recordings_dir or PACKAGE_RECORDINGS_DIR
    return "%s/%s.%s" % (directory.rstrip("/"), request.id, request.record.format)


def ring_timeout(party: Party) -> int:
    """The party's originate_timeout. FreeSWITCH applies it to each ``|``
    group and ends the whole originate (NO_ANSWER, no next group) when it
    expires, so with several destinations each leg gets ``leg_timeout`` (the
    party's ring time; it ends that leg with ALLOTTED_TIMEOUT and moves on)
    and originate_timeout only backs it up."""
    if len(party.destinations) == 1:
        return party.timeout
    return party.timeout + 5


def party_variables(request: CallRequest, name: str, config: Config, attempt: int = 1,
                    worker: str = "") -> list[tuple[str, str]]:
    """The channel variables every leg of party ``name`` carries (placed by
    ``worker``, when given)."""
    party = request.party(name)
    role = "first" if name == request.dial_first else "second"
    other = request.party("b" if name == "a" else "a")
    out: list[tuple[str, str]] = []
    if role == "first":
        out.append(("origination_uuid", request.id))
    out += [(JOB_VAR, request.id), (LEG_VAR, name), (ROLE_VAR, role), (ATTEMPT_VAR, str(attempt))]
    if worker:
        out.append((WORKER_VAR, worker))
    if party.anonymous:
        out += [("origination_caller_id_name", "Anonymous"), ("origination_caller_id_number", "anonymous"),
                ("origination_privacy", "hide_name:hide_number")]
    else:
        number = party.caller_id_number or request.caller_id_number
        cid_name = party.caller_id_name or request.caller_id_name
        if party.show_other_number or (role == "second" and not number):
            # With no number of its own, the second party sees the first
            # party's, as a bridge from a sofia leg shows it by itself: on a
            # loopback route it would otherwise see the loopback leg's
            # "Outbound Call" <context>.
            number = other.first.number
            cid_name = cid_name or number
        if number:
            out.append(("origination_caller_id_number", number))
        if cid_name:
            out.append(("origination_caller_id_name", cid_name))
    out.append(("originate_timeout", str(ring_timeout(party))))
    if party.retries:
        # originate_retries counts attempts, the first one included.
        out += [("originate_retries", str(party.retries + 1)), ("originate_retry_sleep_ms", "1000")]
    out.append(("ignore_early_media", "true" if party.ignore_early_media else "false"))
    if party.auto_answer:
        out.append(("sip_auto_answer", "true"))
    if party.presence_id:
        out.append(("presence_id", party.presence_id))
    if request.music_on_hold is not None:
        out.append(("hold_music", playable(request.music_on_hold)))
    out += [("sip_h_" + header, value) for header, value in party.sip_headers]
    # FreeSWITCH deletes a variable set to the empty string: send none.
    out += [(VAR_PREFIX + key, value) for key, value in request.variables.items() if value]
    if role == "first":
        # The second party's sofia leg would otherwise get the first leg's
        # sip_h_* headers on its INVITE too (sofia_outgoing_channel).
        out.append(("sip_copy_custom_headers", "false"))
        if request.ringback is not None:
            tone = playable(request.ringback)
            out += [("ringback", tone), ("transfer_ringback", tone)]
        if request.media == "bypass":
            out.append(("bypass_media", "true"))
        elif request.media == "proxy":
            out.append(("proxy_media", "true"))
    else:
        # Run on the second party's leg when it answers, i.e. when the two
        # parties are connected.
        hooks = []
        if request.max_duration is not None:
            hooks.append("sched_hangup +%d ALLOTTED_TIMEOUT" % request.max_duration)
        for warning in request.warnings:
            hooks.append("sched_broadcast +%d playback::%s both" % (warning.at, playable(warning.sound)))
        path = recording_path(request, config)
        if path is not None:
            if request.record is not None and request.record.stereo:
                out.append(("RECORD_STEREO", "true"))
            hooks.append("record_session %s" % path)
        out += [("execute_on_answer_%d" % (i + 1), hook) for i, hook in enumerate(hooks)]
    return out


def dial_string(request: CallRequest, name: str, config: Config, rounds: Iterable[str],
                extra: Iterable[tuple[str, str]] = (), attempt: int = 1, worker: str = "") -> str:
    """``{party variables}[leg_timeout=..]<endpoint>|...`` for party ``name``.

    Every leg gets the ``{}`` block, and a sofia leg cannot take a uuid that
    a session still holds ("Duplicate UUID!"): not a simultaneous leg's, nor
    a failed failover leg's, whose session lasts until the originate is
    over. A first party with several destinations therefore carries
    ``origination_uuid`` on its first leg alone, in that leg's ``[]`` block;
    the engine follows whichever leg answers (its uuid comes back in the
    originate's result). ``originate_retries`` dials again only after the
    retry sleep, when the earlier legs are gone."""
    rounds = tuple(rounds)
    party = request.party(name)
    variables = [*party_variables(request, name, config, attempt, worker), *extra]
    several = len(party.destinations) > 1
    # The party rung first leaves the attempt markers, one a leg (its own
    # ``[]`` block when there are several).
    marked = name == request.dial_first
    if marked:
        variables.append((NESTED_VARS, "true"))
    own_uuid: list[tuple[str, str]] = []
    if several:
        own_uuid = [(n, v) for n, v in variables if n == "origination_uuid"]
        variables = [(n, v) for n, v in variables if n != "origination_uuid"]
    elif marked:
        variables += marker_variables(request.id, attempt)
    block = variable_block(variables, rounds)
    if not several:
        return block + endpoint(party.first, config)
    separator = "|" if party.mode == "sequential" else ","
    legs = []
    for i, dest in enumerate(party.destinations):
        leg_vars = [*(own_uuid if i == 0 else ()), ("leg_timeout", str(party.timeout))]
        if marked:
            leg_vars += marker_variables(request.id, attempt, i + 1)
        legs.append(variable_block(leg_vars, rounds, "[]") + endpoint(dest, config))
    return block + separator.join(legs)


def marker_key(job_id: str, attempt: int, leg: int = 1) -> str:
    """The db key of the attempt marker of leg number ``leg`` (1-based, in
    dial-string order) of placement ``attempt`` of job ``job_id``."""
    return "%s_%d_%d" % (uuid.UUID(job_id), attempt, leg)


def marker_variables(job_id: str, attempt: int, leg: int = 1) -> list[tuple[str, str]]:
    """The hooks that write leg ``leg``'s attempt marker (see MARKER_REALM)."""
    where = "db insert/%s/%s/" % (MARKER_REALM, marker_key(job_id, attempt, leg))
    return [
        (MARKER_CREATED_HOOK, where + "%s;${uuid}" % MARKER_UP),
        (MARKER_HANGUP_HOOK, where + "%s;${hangup_cause};${answer_epoch};${bridge_epoch};"
                                     "${last_bridge_hangup_cause};${uuid}" % MARKER_END),
    ]


def marker_legs(request: CallRequest) -> int:
    """How many attempt markers a placement of ``request`` leaves: one a
    destination of the party rung first."""
    return len(request.party(request.dial_first).destinations)


def marker_select_command(job_id: str, attempt: int, leg: int = 1) -> str:
    """The API command that reads one attempt marker (an empty reply: none)."""
    return "db select/%s/%s" % (MARKER_REALM, marker_key(job_id, attempt, leg))


def marker_delete_command(job_id: str, attempt: int, leg: int = 1) -> str:
    """The API command that drops one attempt marker (``+OK`` whether or not it was there)."""
    return "db delete/%s/%s" % (MARKER_REALM, marker_key(job_id, attempt, leg))


@dataclass(frozen=True)
class Marker:
    """One leg's attempt marker as read back. ``ended`` False: the switch
    created the leg and has not hung it up (or stopped before it could)."""

    ended: bool
    uuid: str = ""
    cause: str = ""
    answered: bool = False
    bridged: bool = False
    bridge_cause: str = ""


_CAUSE = re.compile(r"[A-Z][A-Z0-9_]{0,63}\Z")


# What the event socket answers for an API command whose output is empty
# (mod_event_socket.c, api_exec): a ``db select`` of a key that is not there.
NO_REPLY = "-ERR no reply"


def parse_marker(text: str) -> Marker | None:
    """The marker a ``db select`` reply holds: None for no marker (the
    event socket's NO_REPLY, or an empty body). Raises ValueError for any
    other text (``-ERR ...``: no mod_db, or the ESL user may not run ``db``;
    ``!err!``: a usage error)."""
    text = text.strip()
    if not text or text == NO_REPLY:
        return None
    parts = text.split(";")
    leg = _uuid_or_blank(parts[-1])
    if parts[0] == MARKER_UP and len(parts) == 2:
        return Marker(False, leg)
    if parts[0] == MARKER_END and len(parts) == 6:
        cause, answered, bridged, bridge_cause = parts[1:5]
        return Marker(True, leg, cause if _CAUSE.match(cause) else "",
                      _epoch(answered), _epoch(bridged), bridge_cause if _CAUSE.match(bridge_cause) else "")
    raise ValueError("not an attempt marker: %r" % text[:200])


def _uuid_or_blank(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return ""


def _epoch(text: str) -> bool:
    """A ``*_epoch`` variable: set (not 0) when that moment came."""
    return text.isdigit() and int(text) > 0


def uses_dialplan(request: CallRequest) -> bool:
    """Whether the call runs through the eslengine dialplan context: needed
    when media is played before or during the connected call (the
    ``&bridge(...)`` argument cannot carry the parentheses of a tone)."""
    return request.announcement is not None or bool(request.warnings)


def can_hold(request: CallRequest) -> bool:
    """Whether the first leg may wait parked for the engine to start the
    second (see ``originate_args``): not with media bypass or proxy, which
    need the two legs negotiated together by ``bridge``."""
    return request.media == "process"


def bridge_setvar_command(channel_uuid: str, request: CallRequest, config: Config, attempt: int = 1,
                          worker: str = "") -> str:
    """The API command that gives a held first leg the second party's dial
    string (``eslengine_bridge``, bridged by the connect extension), sent
    just before ``transfer_command``. ``uuid_setvar`` splits its arguments
    like the originate's (``switch_separate_string`` at blanks, at most
    three: the value is the rest of the line) and cleans the value once; the
    connect extension's ``bridge ${eslengine_bridge}`` expands it."""
    value = dial_string(request, request.second, config, VAR_ROUNDS, attempt=attempt, worker=worker)
    return "uuid_setvar %s %s %s" % (uuid.UUID(channel_uuid), BRIDGE_VAR, encode_value(value, (EXPANDED, "")))


def connect_refused_clear_command(channel_uuid: str) -> str:
    """The API command that clears ``CONNECT_REFUSED_VAR`` on a held first
    leg (``uuid_setvar`` with no value unsets) before it is sent to the
    connect extension again."""
    return "uuid_setvar %s %s" % (uuid.UUID(channel_uuid), CONNECT_REFUSED_VAR)


def transfer_command(channel_uuid: str) -> str:
    """The API command that sends a held first leg on to the connect
    extension. Only a canonical UUID reaches it."""
    return "uuid_transfer %s %s" % (uuid.UUID(channel_uuid), CONNECT_EXTENSION)


def originate_args(request: CallRequest, config: Config, attempt: int = 1, *, hold: bool = False,
                   worker: str = "") -> str:
    """The arguments of ``originate``: ring the first party; when it answers,
    connect the second. With ``hold`` (see ``can_hold``) the first leg parks
    when it answers, carrying what the connect extension plays, until the
    engine sends ``bridge_setvar_command`` and ``transfer_command``: the
    second party's dial string is sent only for a call that answered (most
    campaign calls do not), and the first leg's events do not carry it.
    Otherwise the first leg carries it in ``eslengine_bridge`` and bridges
    ``${eslengine_bridge}``: through the connect extension when something is
    played, else with ``&bridge(${eslengine_bridge})``. The second party's
    text never goes into application data, which the switch refuses when it
    holds ``\\'`` and expands before ``bridge`` reads it."""
    first = request.dial_first
    if hold and not can_hold(request):
        raise ValueError("a call with media %s cannot be held" % request.media)
    extra = [] if hold else [(BRIDGE_VAR, dial_string(request, request.second, config, VAR_ROUNDS,
                                                      attempt=attempt, worker=worker))]
    media = request.announcement
    if media is not None and media.kind == "say":
        extra += [("eslengine_say", media.value), ("eslengine_tts_engine", config.tts_engine),
                  ("eslengine_tts_voice", media.voice or config.tts_voice or media.language or "default")]
    elif media is not None:
        extra.append(("eslengine_announce", playable(media)))
    if hold:
        # park consumes park_timeout; the connect extension parks a leg whose
        # second party's session was refused again with this one.
        extra += [("park_timeout", str(PARK_TIMEOUT)), (PARK_TIMEOUT_VAR, str(PARK_TIMEOUT))]
        target = "&park()"
    elif uses_dialplan(request):
        target = CONNECT_EXTENSION
    else:
        target = "&bridge(${%s})" % BRIDGE_VAR
    return "%s %s" % (dial_string(request, first, config, ARG_ROUNDS, extra, attempt, worker), target)


def originate_command(request: CallRequest, config: Config, attempt: int = 1, *, hold: bool = False,
                      worker: str = "") -> str:
    """The full ``originate ...`` text (send it with ``bgapi``) for placement
    number ``attempt`` of the job by ``worker`` (its name goes on every leg)."""
    command = "originate " + originate_args(request, config, attempt, hold=hold, worker=worker)
    if "\n" in command or "\r" in command:  # check_value makes this unreachable
        raise ValueError("line break in originate command")
    return command
