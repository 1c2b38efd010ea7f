"""Every period, deadline and patience of the worker, in one value.

``Timings()`` holds the values a worker runs with; a test or a deployment
passes another (``Worker(config, queue, timings=replace(Timings(), ...))``)
instead of changing module globals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    # A call that heard nothing for this many seconds is checked on its
    # switch (``uuid_exists``); the silence loop looks every quarter of it.
    silence_check: float = 60.0
    # How long a sent originate's BACKGROUND_JOB may take: the switch rings
    # every destination (failover, retries) before it answers. Seconds per
    # second of the request's ring timeout, and seconds on top.
    result_per_ring_second: float = 6.0
    result_grace: float = 30.0

    # A worker whose heartbeat is this old is dead; its calls are adopted. It
    # renews it every ``heartbeat_ttl / 3`` seconds (also while it drains),
    # and acts for its jobs only while its lease holds: until
    # ``lease_margin`` seconds before its last renewal can expire (see
    # ``eslengine.lease``). The sweep for dead workers runs as often.
    heartbeat_ttl: float = 6.0
    lease_margin: float = 1.0
    # A job whose record could not be written while Redis was unavailable is
    # taken up again once a read this often succeeds (``_recover_when_redis_answers``).
    outage_retry: float = 1.0

    # The pacers' second is 5 ms longer than the switch's: what the engine
    # sends evenly can reach the switch a few milliseconds closer together.
    pacing_window: float = 1.005
    # A node that has left a command unanswered this long gets no new
    # originate until it answers: every originate written to a switch that
    # has stopped answering may or may not run, and would never be placed
    # again.
    stall_hold: float = 0.5
    # Jobs the claim loop takes off the stream and has not yet originated are
    # at most what the nodes' pacers can start in this many seconds (one more
    # a node). Claimed is "dialing": a job claimed long before its turn would
    # sit there, out of reach of another worker whose nodes have room, and
    # would have to be checked on the switch if this worker died.
    claim_ahead: float = 1.0

    # Workers that pace the same node (the same ``Node.label``) share its
    # limits (``pacing.node_share``). Each renews its place every
    # ``share_beat`` seconds; its share holds for ``share_lease`` seconds
    # after it asked, so a worker that cannot renew stops starting sessions
    # there. A worker's place lapses ``share_ttl`` seconds after its last
    # renewal: later than its heartbeat (twice the heartbeat's lifetime), so
    # that the calls of a dead worker are adopted (and counted by their
    # adopter) before the others' shares grow. A worker that joins starts
    # nothing on the node for ``join_wait`` seconds.
    share_beat: float = 1.0
    share_lease: float = 3.0
    share_ttl: float = 12.0

    # A worker reads each node's own limits (``fsctl sps``, ``fsctl
    # max_sessions``) when it connects and every ``limits_period`` seconds
    # after (an operator may change them live), and paces by the lower of
    # those and the URL's. A throttle refusal keeps the node to half the
    # starts its pacing window held (``Pacer.slow_down``) until
    # ``throttle_hold`` seconds after the last one, and has the limits read
    # again, at most once every ``limits_min_gap`` seconds.
    # ``throttle_settle``: how long a refusal's channel events, if the leg
    # was created after all, may lag its BACKGROUND_JOB. A call the throttle
    # refused ``max_throttled`` times is not placed again: it ends failed
    # DESTINATION_OUT_OF_ORDER with an error that says so (a switch that
    # refuses every session, e.g. fsctl max_sessions 0, would otherwise be
    # asked again for ever).
    limits_period: float = 10.0
    limits_min_gap: float = 1.0
    throttle_hold: float = 3.0
    throttle_settle: float = 0.2
    max_throttled: int = 100

    # A held call's second party is started by the switch's dialplan (the
    # connect extension's bridge); when the throttle refuses that session,
    # the extension parks the first party again with CONNECT_REFUSED_VAR
    # set. The worker looks (uuid_dump) when no sign of the second party
    # came within ``connect_check`` seconds of the transfer, every
    # ``connect_look`` seconds for up to ``connect_look_for``, and sends it
    # again, at most ``connect_refusals`` times.
    connect_check: float = 1.0
    connect_look: float = 0.5
    connect_look_for: float = 10.0
    connect_refusals: int = 20

    # An originate whose result was lost is looked for on its switch through
    # the attempt markers (see markers.py). A switch that cannot be asked is
    # asked again, for up to ``reconcile_patience`` seconds after the loss (a
    # restart takes a few); then the call ends UNKNOWN. An attempt the switch
    # never ran is placed again as the next attempt, at most
    # ``max_placed_again`` times for one job and worker.
    reconcile_patience: float = 60.0
    max_placed_again: int = 5

    # How often the jobs whose retry is due are moved back to the stream.
    retry_pump: float = 0.5

    @property
    def beat_every(self) -> float:
        """Seconds between heartbeat renewals (and sweeps for dead workers)."""
        return self.heartbeat_ttl / 3

    @property
    def join_wait(self) -> float:
        """How long a worker that joins others on a node starts nothing
        there: by then every other has its new share, or none, and starts
        made under the old shares have left the pacing window."""
        return self.share_lease + self.pacing_window + 0.25

    def result_wait(self, ring_timeout: float) -> float:
        """How long a sent originate's BACKGROUND_JOB may take for a request
        whose ring timeout is ``ring_timeout`` seconds."""
        return ring_timeout * self.result_per_ring_second + self.result_grace
