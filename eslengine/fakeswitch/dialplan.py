"""What an answered originate's channel runs: the inline ``&app(args)``
extension, or an extension of a dialplan context: the engine's own
``eslengine_connect`` (context ``eslengine``, as the shipped dialplan runs
it); any other extension is simulated as answer + park. ``uuid_transfer``
moves a channel to an extension the same way.

The application data of ``&app(args)`` and of the connect extension's
actions is expanded (``${var}``, with expansion's own backslash rules)
before the application runs; ``&app(args)`` whose args hold ``\\'`` is not
added at all, and the answered leg, with nothing to run, hangs up
NORMAL_CLEARING (switch_caller.c, ``switch_caller_extension_add_application``).
"""

from __future__ import annotations

import logging

from .apps import FINITE_APPS, LASTING_APPS, Applications
from .bridge import Bridge
from .channel import Channel, hangup_cause
from .dialparse import Originate
from .originate import DialedLeg
from .switchboard import Switchboard

log = logging.getLogger(__name__)

CONNECT_EXTEN = "eslengine_connect"
CONNECT_CONTEXT = "eslengine"
CONNECT_FAILED_EXTEN = "eslengine_connect_failed"
# The connect extension's continue_on_fail: the three causes FreeSWITCH
# continues on by default, and the throttle's.
CONNECT_CONTINUE = "NO_ANSWER,NO_USER_RESPONSE,ORIGINATOR_CANCEL,DESTINATION_OUT_OF_ORDER"
REFUSED_VAR = "eslengine_connect_refused"
PARK_TIMEOUT_VAR = "eslengine_park_timeout"


def is_connect(exten: str | None, dialplan: str | None, context: str | None) -> bool:
    """Whether an extension is the engine's connect extension (the dialplan
    and context default to ``XML`` and ``default``)."""
    return exten == CONNECT_EXTEN and (dialplan or "XML").upper() == "XML" and (context or "default") == CONNECT_CONTEXT


class Dialplan:
    """Runs extensions on the switchboard's channels."""

    def __init__(self, board: Switchboard, apps: Applications, bridge: Bridge) -> None:
        self.board = board
        self.apps = apps
        self.bridge = bridge

    def run(self, winner: DialedLeg, parsed: Originate) -> None:
        """The answered A leg of an originate runs its application or extension."""
        board = self.board
        a = winner.a
        assert a is not None
        if winner.b is not None:
            winner.b.variables["endpoint_disposition"] = "ANSWER"
        self._flip(a)
        app = (parsed.app or "").lower()
        if not app and is_connect(parsed.exten, parsed.dialplan, parsed.context):
            self._connect(a)
            return
        if parsed.app_refused:
            log.warning("App not added, Invalid character sequence in data string [%s]", parsed.app_args)
            board.hangup(a, "NORMAL_CLEARING")
            return
        app_args = a.expand(parsed.app_args or "")
        if not app:
            app = "park"   # `<exten> [XML] [context]`: simulated as answer + park
        a.app = app
        if not a.alive:
            return
        self.apps.begin(a, app, app_args)
        if app == "bridge":
            if self.bridge.bridge(a, app_args) is not None:
                board.hangup(a, "NORMAL_CLEARING")  # nothing follows &bridge
        elif app == "hangup":
            board.hangup(a, hangup_cause(app_args.strip() or None))
        elif app in LASTING_APPS:
            if board.talk_time is not None and a.talk_timer is None and winner.outcome.talk is None:
                a.talk_timer = board.later(board.talk_time, board.talk_over, a)
            if app == "park":
                self.apps.park_timer(a)
        elif app in FINITE_APPS:
            board.hangup(a, "NORMAL_CLEARING")
        else:
            board.hangup(a, "DESTINATION_OUT_OF_ORDER")

    @staticmethod
    def _flip(ch: Channel) -> None:
        ch.variables["endpoint_disposition"] = "ANSWER"
        ch.variables["pre_transfer_caller_id_name"] = ch.cid_name
        ch.variables["pre_transfer_caller_id_number"] = ch.cid_num
        ch.variables["channel_cid_flipped"] = "yes"
        ch.flipped = True
        ch.hit_dialplan = True

    def transfer(self, ch: Channel, exten: str, dialplan: str, context: str) -> None:
        """``switch_ivr_session_transfer``: the channel leaves what it runs
        (a park) and runs ``exten`` in ``context``. The ``eslengine_connect``
        extension is run as the shipped dialplan would; any other target is
        simulated as a park."""
        if is_connect(exten, dialplan, context):
            ch.app = "transfer"
            self.board.spawn(self._connect, ch)
            return
        ch.context, ch.dest = context, exten
        ch.app = "park"
        ch.variables["current_application"] = "park"

    def _connect(self, a: Channel) -> None:
        """Extension ``eslengine_connect`` (context ``eslengine``): answer;
        playback ``${eslengine_announce}`` if set; speak
        ``${eslengine_tts_engine}|${eslengine_tts_voice}|${eslengine_say}`` if
        set; set ``continue_on_fail`` (CONNECT_CONTINUE); bridge
        ``${eslengine_bridge}``; transfer to ``eslengine_connect_failed``
        (``_connect_failed``). With nothing to bridge the extension ends and
        the channel hangs up NORMAL_CLEARING."""
        apps = self.apps
        a.context = CONNECT_CONTEXT
        a.dest = CONNECT_EXTEN
        apps.execute(a, "answer", None)
        # Each condition's field and action's data is expanded as the
        # dialplan reads it (field="${...}" expression="^.+$").
        announce = a.expand("${eslengine_announce}")
        if announce and a.alive:
            apps.execute(a, "playback", announce, "FILE PLAYED", self.board.playback_time)
        if a.expand("${eslengine_say}") and a.alive:
            data = a.expand("${eslengine_tts_engine}|${eslengine_tts_voice}|${eslengine_say}")
            apps.execute(a, "speak", data, "_none_", self.board.playback_time)
        bridge = a.expand("${eslengine_bridge}")
        if not a.alive:
            return
        if not bridge:
            self.board.hangup(a, "NORMAL_CLEARING")
            return
        apps.execute(a, "set", "continue_on_fail=" + CONNECT_CONTINUE)
        a.variables["continue_on_fail"] = CONNECT_CONTINUE
        a.app = "bridge"
        apps.begin(a, "bridge", bridge)
        cause = self.bridge.bridge(a, bridge)
        if cause is not None and a.alive:
            apps.execute(a, "transfer", CONNECT_FAILED_EXTEN + " XML " + CONNECT_CONTEXT)
            self._connect_failed(a)

    def _connect_failed(self, a: Channel) -> None:
        """Extensions ``eslengine_connect_refused`` and
        ``eslengine_connect_failed``: a held first leg (one with an
        ``eslengine_park_timeout``) whose bridge failed DESTINATION_OUT_OF_ORDER with
        no channel created (an empty ``originate_causes``: the throttle or
        session limit refused it) parks again, that park timeout re-armed,
        with ``eslengine_connect_refused=true``; any other DESTINATION_OUT_OF_ORDER
        hangs up with it; anything else NORMAL_CLEARING."""
        a.dest = CONNECT_FAILED_EXTEN
        disposition = a.variables.get("originate_disposition", "")
        park_timeout = a.variables.get(PARK_TIMEOUT_VAR, "")
        if (disposition == "DESTINATION_OUT_OF_ORDER" and not a.variables.get("originate_causes")
                and park_timeout.isdigit()):
            a.variables[REFUSED_VAR] = "true"
            self.apps.execute(a, "set", REFUSED_VAR + "=true")
            a.variables["park_timeout"] = park_timeout
            self.apps.execute(a, "set", "park_timeout=" + park_timeout)
            a.app = "park"
            self.apps.begin(a, "park", None)
            self.apps.park_timer(a)
            return
        self.board.hangup(a, "DESTINATION_OUT_OF_ORDER" if disposition == "DESTINATION_OUT_OF_ORDER"
                          else "NORMAL_CLEARING")
