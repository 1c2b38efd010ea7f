"""Every Redis key name eslengine uses, in one place.

Each key is ``{<prefix>}:<name>`` (with ``ESLENGINE_REDIS_SHARDS`` above 1,
the per-call keys below are also in ``{<prefix>#<n>}:<name>``, n = 1 ... N-1:
see ``Keys`` and ``store.shards``) (``<prefix>`` is ``ESLENGINE_KEY_PREFIX``,
``eslengine`` by default). The braces are a Redis Cluster hash tag: only the
prefix is hashed, so every key of one prefix lives in the same hash slot and
any script may touch any of them on a cluster as on a single server
(https://redis.io/docs/reference/cluster-spec/#hash-tags).

``{p}:jobs``                     STREAM: one entry per job, one field ``job``
                                 holding the request JSON. Any app may ``XADD``.
``{p}:jobs:bulk``                STREAM: the bulk lane, read only with room left
                                 over from ``{p}:jobs`` (the interactive lane).
``{p}:dead``                     STREAM: jobs that cannot be dialed, with ``reason``.
``{p}:call:<id>``                HASH: the call's status, timestamps, causes, request.
``{p}:call:<id>:history``        LIST: ``<status> <iso time>`` in order.
``{p}:call:<id>:placing:<n>``    STRING: the worker placing attempt n again.
``{p}:calls`` / ``{p}:calls:<owner>``  ZSET: call ids by creation time (µs).
``{p}:idem:<owner>:<digest>``    STRING: ``<call id> <request digest>`` of an Idempotency-Key.
``{p}:cancel``                   pub/sub channel: ids whose live call must be hung up.
``{p}:retry``                    ZSET: calls waiting to be placed again, by when.
``{p}:workers``                  SET: worker names.
``{p}:worker:<name>``            STRING: a worker's heartbeat (its token).
``{p}:worker:<name>:info``       HASH: what the worker says of itself for ``eslengine status``.
``{p}:workers:seen``             ZSET: workers that said anything of themselves, by when last.
``{p}:live:<name>``              SET: the calls a worker follows.
``{p}:adopter:<name>``           STRING: the worker adopting a dead one.
``{p}:node:<node>:workers``      ZSET: the workers pacing a node, by when each lapses.
``{p}:node:<node>:held``         HASH: worker -> ``<sessions held> <session share>``.
``{p}:webhooks``                 ZSET: calls with webhook deliveries pending, by when due.
``{p}:webhooks:<id>``            LIST: a call's pending deliveries, in order.
``{p}:accounts``                 HASH: account id -> JSON document.
``{p}:account:<id>:<kind>``      HASH: item id -> JSON document.
``{p}:account:<id>:c2c-calls:<c2c id>``            ZSET: calls a click-to-call placed.
``{p}:account:<id>:c2c-limit:<c2c id>:<counter>``  a click-to-call's connect counters.
``{p}:account:<id>:c2c-refusals:<c2c id>``         HASH: its widget's refusals by reason.
``{p}:widget-dest:<number>:<hour>``                calls to a number through any widget that hour.
``{p}:apikey:<sha256 of the token>``               HASH: a client key.
``{p}:apikeys``                  HASH: key id -> token digest.
``{p}:apikey-rate:<id>:<minute>``  counter of calls a key placed.
``{p}:cdr``                      STREAM: one call detail record per call reaching a final status.
``{p}:campaigns``                ZSET: campaign ids by creation time (µs).
``{p}:campaigns:active``         SET: campaigns the dispatcher has work for.
``{p}:campaigns:deleting``       SET: campaigns whose keys are being deleted.
``{p}:campaign:<id>``            HASH: the campaign's document, state, counters (once deleted: a
                                 tombstone, state "deleted", kept ``record_ttl``).
``{p}:campaign:<id>:contact:<c>``  HASH: a contact: its document, state, attempts, outcome.
``{p}:campaign:<id>:pending``    ZSET: contacts to call, by when they may be.
``{p}:campaign:<id>:waiting``    ZSET: contacts waiting for their calling window, by when it opens.
``{p}:campaign:<id>:dialing``    ZSET: contacts with a call under way, by when it was queued.
``{p}:campaign:<id>:contacts``   ZSET: every contact of the campaign, in the order added (its index).
``{p}:campaign-dispatcher``      STRING: the token of the worker dispatching campaigns.
``{p}:dnc:global``               HASH: do-not-call number -> entry JSON (``dnc.Entry``).
``{p}:dnc:account:<id>``         HASH: an account's do-not-call list, the same way.
``{p}:dnc:refused``              HASH: calls refused for a do-not-call number, by
                                 ``<api|dial>`` and ``<api|dial>:<account>``.
"""

from __future__ import annotations

from .. import calls


def shard_tag(prefix: str, shard: int) -> str:
    """The hash tag of ``prefix``'s keys in ``shard``."""
    return "{%s}" % prefix if shard == 0 else "{%s#%d}" % (prefix, shard)


# The consumer group every worker reads the job streams through.
GROUP = "workers"
# The job streams, in the order a worker serves them (``calls.LANES``):
# ``Keys.jobs`` (what people wait for on the phone) first, ``Keys.jobs_bulk``
# with the room left.
LANES = calls.LANES
# A bulk-lane entry's id, as the store hands it out: "bulk:<stream id>".
_BULK_ENTRY = "bulk:"
# The one field of a job's stream entry: the request JSON.
JOB_FIELD = "job"


class Keys:
    """Key names under one prefix, in one shard (``store.shards``).

    Shard 0 is ``{<prefix>}``; shard n > 0 is ``{<prefix>#n}`` (``#`` is
    not allowed in a prefix, so no shard's tag is another prefix's). The
    calls' keys, both lanes' job streams, dead letters, retries, the
    outbox, the CDR stream and the workers' heartbeats are the shard's;
    accounts, API keys, click-to-call and widget counters, campaigns (and
    every key of theirs), the do-not-call lists and refusal counts, and
    node pacing are always the base shard's (``base``), whatever shard
    asks."""

    def __init__(self, prefix: str = "eslengine", shard: int = 0) -> None:
        self.prefix = prefix
        self.shard = shard
        self.base = "{%s}" % prefix
        self.tag = shard_tag(prefix, shard)
        self.jobs = self.tag + ":jobs"
        self.jobs_bulk = self.tag + ":jobs:bulk"
        self.dead = self.tag + ":dead"
        self.cancel = self.tag + ":cancel"
        self.retry = self.tag + ":retry"
        self.workers = self.tag + ":workers"
        self.workers_seen = self.tag + ":workers:seen"
        self.webhooks = self.tag + ":webhooks"
        self.cdr = self.tag + ":cdr"
        self.accounts = self.base + ":accounts"
        self.apikeys = self.base + ":apikeys"
        self.campaigns = self.base + ":campaigns"
        self.active_campaigns = self.base + ":campaigns:active"
        self.deleting_campaigns = self.base + ":campaigns:deleting"
        self.dispatcher = self.base + ":campaign-dispatcher"
        self.dnc_refused = self.base + ":dnc:refused"

    def of_shard(self, shard: int) -> Keys:
        """The same prefix's keys in ``shard``."""
        return self if shard == self.shard else Keys(self.prefix, shard)

    # ------------------------------------------------------------ lanes

    def stream(self, lane: str) -> str:
        """The job stream of ``lane`` (one of ``LANES``) in this shard."""
        return self.jobs_bulk if lane == "bulk" else self.jobs

    def entry_of(self, entry: str) -> tuple[str, str]:
        """(stream key, stream id) of an entry id as the store hands it out
        (``lane_entry``)."""
        if entry.startswith(_BULK_ENTRY):
            return self.jobs_bulk, entry[len(_BULK_ENTRY):]
        return self.jobs, entry

    # ------------------------------------------------------------ calls

    def call(self, job_id: str) -> str:
        return "%s:call:%s" % (self.tag, job_id)

    def history(self, job_id: str) -> str:
        return "%s:call:%s:history" % (self.tag, job_id)

    def placing(self, job_id: str, attempt: int) -> str:
        """STRING: the worker that places attempt ``attempt`` of the job again
        (``Registry.take_attempt``)."""
        return "%s:call:%s:placing:%d" % (self.tag, job_id, attempt)

    def index(self, owner: str = "") -> str:
        """ZSET: call ids by creation time (µs): every call, or ``owner``'s."""
        return "%s:calls:%s" % (self.tag, owner) if owner else self.tag + ":calls"

    def idempotency(self, owner: str, digest: str) -> str:
        """STRING: "<call id> <request digest>" of an Idempotency-Key."""
        return "%s:idem:%s:%s" % (self.tag, owner or "-", digest)

    def webhook(self, job_id: str) -> str:
        return "%s:webhooks:%s" % (self.tag, job_id)

    # ------------------------------------------------------------ workers

    def heartbeat(self, worker: str) -> str:
        return "%s:worker:%s" % (self.tag, worker)

    def worker_info(self, worker: str) -> str:
        """HASH: what ``worker`` says of itself (``store.overview``),
        renewed with its heartbeat."""
        return "%s:worker:%s:info" % (self.tag, worker)

    def live(self, worker: str) -> str:
        return "%s:live:%s" % (self.tag, worker)

    def adopter(self, dead: str) -> str:
        return "%s:adopter:%s" % (self.tag, dead)

    def node_workers(self, node: str) -> str:
        """ZSET: the workers pacing ``node``, scored by when each lapses."""
        return "%s:node:%s:workers" % (self.base, node)

    def node_held(self, node: str) -> str:
        """HASH: worker -> "<sessions held> <session share>" on ``node``."""
        return "%s:node:%s:held" % (self.base, node)

    # ------------------------------------------------------------ accounts and keys

    def account_items(self, account: str, kind: str) -> str:
        """HASH: item id -> JSON document, of one kind (``accounts.KINDS``)."""
        return "%s:account:%s:%s" % (self.base, account, kind)

    def account_pattern(self, account: str) -> str:
        """A ``SCAN MATCH`` pattern for every key an account holds."""
        return "%s:account:%s:*" % (self.base, account)

    def c2c_calls(self, account: str, item_id: str) -> str:
        """ZSET: the calls a click-to-call placed, by connect time (µs)."""
        return "%s:account:%s:c2c-calls:%s" % (self.base, account, item_id)

    def c2c_limit(self, account: str, item_id: str, counter: str) -> str:
        """A click-to-call's connect counter (``clicktocall.limits``)."""
        return "%s:account:%s:c2c-limit:%s:%s" % (self.base, account, item_id, counter)

    def c2c_refusals(self, account: str, item_id: str) -> str:
        """HASH: reason -> how often the click-to-call's widget refused a call."""
        return "%s:account:%s:c2c-refusals:%s" % (self.base, account, item_id)

    def widget_destination(self, number: str, hour: int) -> str:
        """Counter of the calls to ``number`` placed through any widget in
        one hour (``ESLENGINE_WIDGET_PER_DESTINATION``)."""
        return "%s:widget-dest:%s:%d" % (self.base, number, hour)

    def apikey(self, digest: str) -> str:
        """HASH: the client key whose token has this SHA-256 digest."""
        return "%s:apikey:%s" % (self.base, digest)

    def apikey_rate(self, key_id: str, minute: int) -> str:
        """Counter of the calls a key placed in one minute."""
        return "%s:apikey-rate:%s:%d" % (self.base, key_id, minute)

    # ------------------------------------------------------------ do-not-call

    def dnc(self, account: str = "") -> str:
        """HASH: the do-not-call list of ``account``, or the global one
        (always the base shard's: one copy, whatever shard asks)."""
        return "%s:dnc:account:%s" % (self.base, account) if account else self.base + ":dnc:global"


    # ------------------------------------------------------------ campaigns

    def campaign(self, campaign_id: str) -> str:
        return "%s:campaign:%s" % (self.base, campaign_id)

    def contact(self, campaign_id: str, contact_id: str) -> str:
        return "%s:campaign:%s:contact:%s" % (self.base, campaign_id, contact_id)

    def campaign_pending(self, campaign_id: str) -> str:
        """ZSET: contacts to call, scored by when they may be (epoch seconds)."""
        return "%s:campaign:%s:pending" % (self.base, campaign_id)

    def campaign_waiting(self, campaign_id: str) -> str:
        """ZSET: contacts outside their calling window, scored by when it opens."""
        return "%s:campaign:%s:waiting" % (self.base, campaign_id)

    def campaign_dialing(self, campaign_id: str) -> str:
        """ZSET: contacts whose call is queued or up, scored by when it was queued."""
        return "%s:campaign:%s:dialing" % (self.base, campaign_id)

    def campaign_contacts(self, campaign_id: str) -> str:
        """ZSET: every contact id of a campaign, scored by the order it was
        added in (what listings page through and a delete walks)."""
        return "%s:campaign:%s:contacts" % (self.base, campaign_id)

    def campaign_pattern(self, campaign_id: str) -> str:
        """A ``SCAN MATCH`` pattern for every key of a campaign but its hash."""
        return "%s:campaign:%s:*" % (self.base, campaign_id)


def lane_entry(lane: str, stream_id: str) -> str:
    """The id the store hands out for entry ``stream_id`` of ``lane``'s
    stream: the stream id itself in the interactive lane (as before there
    were lanes), ``"bulk:<id>"`` in the bulk lane. Ids of the two streams
    may be equal; these never are."""
    return _BULK_ENTRY + stream_id if lane == "bulk" else stream_id


def lane_of(entry: str) -> str:
    return "bulk" if entry.startswith(_BULK_ENTRY) else "interactive"


def report_member(campaign_id: str, contact_id: str) -> str:
    """The outbox member (``Keys.webhooks``) of a contact's delivery report."""
    return "campaign/%s/%s" % (campaign_id, contact_id)


def account_index(account: str) -> str:
    """The owner name (``Keys.index``) an account's calls are indexed under."""
    return "account:" + account
