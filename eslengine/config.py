"""Every setting eslengine reads, with its default, in one frozen dataclass.

``Config.from_env(os.environ)`` is the only place environment variables are
read; everything else is handed a ``Config``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from . import urls
from .errors import ConfigError
from .redisurl import RedisUrlError, parse_redis_url

DEFAULT_FREESWITCH = "esl://:ClueCon@127.0.0.1:8021"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# FreeSWITCH's compiled-in switch.conf defaults (switch_core.c).
FS_DEFAULT_SPS = 30
FS_DEFAULT_MAX_SESSIONS = 1000
# Dead letters kept (about: the stream is trimmed a node at a time).
DEAD_LETTER_MAX = 100_000
# Call detail records kept in the CDR stream (about: trimmed a node at a time).
CDR_MAX = 1_000_000
# The Debian/RPM packages' recordings_dir: assumed for a node that will not
# say its own (see Config.recordings_dir).
PACKAGE_RECORDINGS_DIR = "/var/lib/freeswitch/recordings"


def redact_url(url: str) -> str:
    """``url`` as errors and logs may show it: the password in its user
    information replaced by ``***`` (``esl://user:***@host:port``); with no
    ``user:`` part, the whole user information. Errs on hiding too much: all
    up to the last ``@`` counts as user information. A query option named
    ``*password`` is hidden too."""
    url = re.sub(r"([?&][^=&#]*password=)[^&#]*", r"\1***", url)  # redis+sentinel://...?sentinel_password=
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return "%s://%s@%s" % (scheme, user + ":***" if colon else "***", host)


@dataclass(frozen=True)
class Node:
    """One FreeSWITCH node the worker holds an event-socket connection to.

    ``sps`` and ``max_sessions`` are the node's switch.conf limits as the
    engine should assume them; a loopback originate costs two sessions.
    """

    host: str
    port: int
    password: str = field(repr=False)
    name: str = ""
    # Non-empty: authenticate with ``userauth user@domain:password`` as a
    # directory user restricted by esl-allowed-api / esl-allowed-events.
    user: str = ""
    sps: int = FS_DEFAULT_SPS
    max_sessions: int = FS_DEFAULT_MAX_SESSIONS

    @property
    def label(self) -> str:
        return self.name or "%s:%d" % (self.host, self.port)

    @classmethod
    def from_url(cls, url: str) -> Node:
        """``esl://:password@host:port?name=fs1&sps=30&max_sessions=1000``;
        ``esl://engine%40example.com:password@host:port`` uses ``userauth``."""
        url = url.strip()
        shown = redact_url(url)
        parts = urlsplit(url)
        if parts.scheme != "esl":
            raise ConfigError("FreeSWITCH node %s: scheme must be esl://" % shown)
        try:
            port = parts.port or 8021
        except ValueError:
            raise ConfigError("FreeSWITCH node %s: bad port" % shown) from None
        if not parts.hostname:
            raise ConfigError("FreeSWITCH node %s: no host" % shown)
        password = unquote(parts.password or "ClueCon")
        if password.startswith("CHANGE_ME"):
            raise ConfigError("FreeSWITCH node %s:%s: the password is still the CHANGE_ME placeholder" % (
                parts.hostname, port))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"name", "sps", "max_sessions"}
        if unknown:
            raise ConfigError("FreeSWITCH node %s: unknown option %s" % (shown, ", ".join(sorted(unknown))))
        try:
            sps = _positive_int("sps", query.get("sps", FS_DEFAULT_SPS))
            max_sessions = _positive_int("max_sessions", query.get("max_sessions", FS_DEFAULT_MAX_SESSIONS))
        except ConfigError as exc:
            raise ConfigError("FreeSWITCH node %s: %s" % (shown, exc)) from None
        return cls(
            host=parts.hostname,
            port=port,
            password=password,
            user=unquote(parts.username or ""),
            name=query.get("name", ""),
            sps=sps,
            max_sessions=max_sessions,
        )


def _positive_int(name: str, value: object) -> int:
    try:
        number = int(str(value))
    except ValueError as exc:
        raise ConfigError("%s must be a whole number, got %r" % (name, value)) from exc
    if number <= 0:
        raise ConfigError("%s must be positive, got %d" % (name, number))
    return number


def _positive_float(name: str, value: object) -> float:
    try:
        number = float(str(value))
    except ValueError as exc:
        raise ConfigError("%s must be a number, got %r" % (name, value)) from exc
    if number <= 0:
        raise ConfigError("%s must be positive, got %s" % (name, value))
    return number


def check_recordings_dir(value: str) -> str:
    """A recordings directory as a call's ``record_session`` may name it: an
    absolute path of letters, digits and ``_./-`` (no blanks, which would
    split the application's arguments), without ``..``; returned without a
    trailing slash. ConfigError otherwise."""
    if not re.fullmatch(r"/[A-Za-z0-9_./-]*", value) or ".." in value:
        raise ConfigError("recordings directory %r: use an absolute path of letters, digits and _./-" % value)
    return value.rstrip("/") or "/"


# A directory domain as a user/<ext>@domain destination may name it.
_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*")


def _flag(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError("%s must be 1 or 0, got %r" % (name, value))


def _words(value: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in value.split(",") if w.strip())


def _patterns(name: str, value: str) -> tuple[str, ...]:
    patterns = tuple(p for p in (s.strip() for s in value.split(";")) if p)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError("%s: bad regex %r: %s" % (name, pattern, exc)) from exc
    return patterns


# ESLENGINE_REDIS_SHARDS's ceiling: a worker process serves every shard.
MAX_SHARDS = 64

# Every ESLENGINE_* setting Config.from_env reads (without the prefix).
SETTINGS = (
    "REDIS_URL", "KEY_PREFIX", "FREESWITCH", "API_KEYS", "ROUTE_TEMPLATE", "GATEWAY", "USER_DOMAIN", "ALLOW",
    "BLOCKED_PREFIXES", "ALLOW_UNVALIDATED_NUMBERS", "REFUSED_NUMBER_TYPES", "COUNTRIES", "DEFAULT_REGION",
    "SIP_DOMAINS", "SIP_PROFILE", "RECORDINGS_DIR", "TTS_ENGINE", "TTS_VOICE", "MEDIA_URL_PREFIXES",
    "WEBHOOK_ALLOW", "WEBHOOK_ALLOW_NETWORKS", "WEBHOOK_SECRET", "DEFAULT_RING_TIMEOUT", "MAX_RING_TIMEOUT",
    "CONCURRENCY", "CLAIM_IDLE_MS", "RECORD_TTL", "DEAD_LETTER_MAX", "CDR_MAX", "MAX_ATTEMPTS", "DEFAULT_ATTEMPTS",
    "DEFAULT_RETRY_BACKOFF", "MAX_DESTINATIONS", "MAX_CALL_DURATION", "WEBHOOK_CONCURRENCY", "WEBHOOK_MAX_AGE",
    "ESL_TIMEOUT", "RECONNECT_MAX_DELAY", "BRIDGE", "LOG_LEVEL", "LOG_FORMAT", "WIDGET_SECRET",
    "WIDGET_PER_DESTINATION", "REDIS_WAIT_REPLICAS", "INTERACTIVE_RESERVE", "METRICS_PORT", "METRICS_ADDRESS",
    "METRICS_TOKEN", "CAMPAIGN_TTL", "REDIS_SHARDS", "WORKER_SHARDS",
)
# ESLENGINE_* variables of the project's own tools (the conformance suite, the
# examples), not of the engine.
TOOL_SETTINGS = ("CONFORMANCE", "CONFORMANCE_KEEP", "FREESWITCH_PREFIX", "URL", "KEY")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``ESLENGINE_*`` variable that is no setting (a
    misspelt one would otherwise be ignored without a word)."""
    import difflib

    known = set(SETTINGS) | set(TOOL_SETTINGS)
    out = []
    for name in sorted(k for k in environ if k.startswith("ESLENGINE_")):
        bare = name[len("ESLENGINE_"):]
        if bare in known:
            continue
        close = difflib.get_close_matches(bare, SETTINGS, n=1)
        out.append("%s is not a setting%s; it is ignored" % (
            name, " (did you mean ESLENGINE_%s?)" % close[0] if close else ""))
    return out


def known_region(code: str) -> bool:
    """Whether ``code`` (upper case) is a region libphonenumber has a
    numbering plan for."""
    import phonenumbers

    return code in phonenumbers.SUPPORTED_REGIONS


@dataclass(frozen=True)
class Config:
    redis_url: str = DEFAULT_REDIS_URL
    # An accepted job (202), and a worker's claim before it originates, wait
    # until this many replicas hold them (Redis WAIT), so that a failover
    # cannot lose them; 0: the primary's reply is enough.
    redis_wait_replicas: int = 0
    key_prefix: str = "eslengine"
    # Key namespaces the calls spread over (``store.shards``): on a Redis
    # Cluster each is one hash slot, so more of them spread the work over
    # more primaries. 1: every key under ``{key_prefix}``, as always.
    redis_shards: int = 1
    # The shards a worker process serves (``eslengine worker``); empty: all.
    worker_shards: tuple[int, ...] = ()
    nodes: tuple[Node, ...] = (Node("127.0.0.1", 8021, "ClueCon"),)
    api_keys: frozenset[str] = frozenset()

    # Where E.164 numbers go: {number} is the number without '+', {e164} with
    # it, {gateway} the gateway below.
    route_template: str = "sofia/gateway/{gateway}/{number}"
    gateway: str = "default"
    # FreeSWITCH directory domains user/NNNN@domain destinations may name,
    # lower case; the first is the domain of user/NNNN with none. Empty:
    # no domain may be named, user/NNNN goes to the switch's default domain.
    user_domains: tuple[str, ...] = ()
    # Toll-fraud policy for E.164 destinations, applied in this order:
    # blocked prefixes (default: international satellite and shared-network
    # ranges, billed at premium rates), refused number types (libphonenumber's
    # classification; default premium rate), countries served (ISO 3166 codes;
    # empty = any), allow-list (full-match regexes; empty = any).
    blocked_prefixes: tuple[str, ...] = ("+870", "+881", "+882", "+883")
    # Numbers libphonenumber cannot validate (no range of their country's
    # numbering plan fits them; their type is unknown) are refused unless
    # this is set, for operators who must dial unusual ranges.
    allow_unvalidated_numbers: bool = False
    refused_number_types: tuple[str, ...] = ("premium_rate",)
    countries: frozenset[str] = frozenset()
    # Where numbers written without a country code are (ISO 3166 code, e.g.
    # "US"): "(212) 555-0123" is then dialed as +12125550123. Empty: such
    # numbers are refused (a request may name its own "region").
    default_region: str = ""
    allow_patterns: tuple[str, ...] = ()
    # SIP URI destinations: full-match regexes on the domain; empty = refused.
    sip_domains: tuple[str, ...] = ()
    sip_profile: str = "external"
    max_destinations: int = 5
    max_retries: int = 3
    max_call_duration: int = 4 * 3600
    # Where the switch writes recordings ({id}.wav / .mp3 is appended).
    # None: each node's own recordings_dir (a source install keeps it under
    # its prefix), which the worker reads from the node when it connects.
    recordings_dir: str | None = None
    # Text to speech: the switch's TTS module and default voice ('' = no TTS).
    tts_engine: str = ""
    tts_voice: str = ""
    # Audio URLs the switch may fetch: http(s) URLs of a host and an optional
    # path, compared by parts (urls.media_url_allowed); empty = URLs refused.
    media_url_prefixes: tuple[str, ...] = ()
    # Webhooks: callback_url must fully match one of these regexes (and have
    # the host a regex writes out plainly: urls.webhook_url_allowed); empty =
    # webhooks refused. The secret signs each delivery (HMAC-SHA256).
    webhook_allow: tuple[str, ...] = ()
    webhook_secret: str = ""
    # Networks (CIDR) a webhook may reach although they are not public
    # (loopback, private, link-local ...); empty = public addresses only.
    webhook_allow_networks: tuple[str, ...] = ()
    # Signs the "call me" widget's tokens (widget.py); every API process must
    # have the same one. Empty: widgets are off. And how often one number may
    # be called an hour through any widget.
    widget_secret: str = ""
    widget_per_destination: int = 3
    # Deliveries one worker makes at once, and how long (s) a delivery is
    # retried before it is dropped (and logged).
    webhook_concurrency: int = 20
    webhook_max_age: int = 24 * 3600

    # Who starts the second party's leg. "engine": the first party's leg
    # parks when it answers and the worker, in its turn on the node's pacer,
    # transfers it to the eslengine_connect extension, which bridges; every
    # session start on a node is then paced. "switch": "&bridge(...)", the
    # switch starts the second leg the moment the first answers, unpaced.
    # Calls with media bypass or proxy always use "&bridge(...)".
    bridge: str = "engine"

    default_ring_timeout: int = 30
    max_ring_timeout: int = 120
    max_variables: int = 32

    # Worker.
    concurrency: int = 2000
    esl_timeout: float = 5.0
    reconnect_max_delay: float = 10.0
    # How long a claimed job may stay unacknowledged before another worker
    # takes it over (ms); must exceed the longest ring time.
    claim_idle_ms: int = 180_000
    # Room a worker keeps for interactive jobs: bulk-lane jobs never take the
    # last this many of its pool, its claim-ahead, or a node's sessions
    # (at most a quarter of the node's ceiling).
    interactive_reserve: int = 2
    # How long a finished call's record is kept in Redis (s).
    record_ttl: int = 7 * 24 * 3600
    # How long a finished or cancelled campaign is kept, all its keys (s).
    campaign_ttl: int = 30 * 24 * 3600
    # How many dead letters are kept, the oldest dropped first.
    dead_letter_max: int = DEAD_LETTER_MAX
    # How many call detail records the CDR stream keeps, the oldest dropped first.
    cdr_max: int = CDR_MAX
    # Retries of a whole call that failed: the most attempts a job may ask
    # for, and what a job that says nothing gets.
    max_attempts: int = 5
    default_attempts: int = 1
    default_retry_backoff: int = 60

    # Prometheus metrics. A worker serves GET /metrics on this port (0: it
    # serves none) at this address; the API serves it on its own port, only
    # to a bearer of the token when one is set.
    metrics_port: int = 0
    metrics_address: str = "127.0.0.1"
    metrics_token: str = ""

    log_level: str = "INFO"
    # "text": one line a record, for a terminal; "json": one JSON object a
    # line with the job id, node, worker, event and cause as fields.
    log_format: str = "text"

    def __repr__(self) -> str:
        """The settings, with no password, key or secret in them."""
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "redis_url":
                value = redact_url(value)
            elif f.name in ("api_keys", "webhook_secret", "widget_secret", "metrics_token") and value:
                value = "***"
            shown.append("%s=%r" % (f.name, value))
        return "Config(%s)" % ", ".join(shown)

    @property
    def user_domain(self) -> str:
        """The domain of a ``user/<ext>`` destination that names none ('' =
        the switch's default domain)."""
        return self.user_domains[0] if self.user_domains else ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Build from ``ESLENGINE_*`` variables; unset ones keep their default."""
        env = {k: v for k, v in environ.items() if k.startswith("ESLENGINE_")}
        kwargs: dict[str, object] = {}

        def take(name: str) -> str | None:
            assert name in SETTINGS, name
            value = env.get("ESLENGINE_" + name)
            return value if value is not None and value.strip() != "" else None

        if (v := take("REDIS_URL")) is not None:
            try:
                parse_redis_url(v)
            except RedisUrlError as exc:
                raise ConfigError("ESLENGINE_REDIS_URL %s: %s" % (redact_url(v), exc)) from None
            kwargs["redis_url"] = v
        if (v := take("REDIS_WAIT_REPLICAS")) is not None:
            kwargs["redis_wait_replicas"] = 0 if v.strip() == "0" else _positive_int("ESLENGINE_REDIS_WAIT_REPLICAS", v)
        if (v := take("KEY_PREFIX")) is not None:
            if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", v):
                raise ConfigError("ESLENGINE_KEY_PREFIX may hold letters, digits and _.:- only")
            kwargs["key_prefix"] = v
        if (v := take("REDIS_SHARDS")) is not None:
            shards = _positive_int("ESLENGINE_REDIS_SHARDS", v)
            if shards > MAX_SHARDS:
                raise ConfigError("ESLENGINE_REDIS_SHARDS: at most %d" % MAX_SHARDS)
            kwargs["redis_shards"] = shards
        if (v := take("WORKER_SHARDS")) is not None:
            top = int(str(kwargs.get("redis_shards", 1)))
            served = []
            for word in _words(v):
                if not (word.isascii() and word.isdigit()) or int(word) >= top:
                    raise ConfigError("ESLENGINE_WORKER_SHARDS: %r is not a shard (0 to %d, see "
                                      "ESLENGINE_REDIS_SHARDS)" % (word, top - 1))
                served.append(int(word))
            if not served:
                raise ConfigError("ESLENGINE_WORKER_SHARDS names no shard")
            kwargs["worker_shards"] = tuple(sorted(set(served)))
        if (v := take("FREESWITCH")) is not None:
            kwargs["nodes"] = tuple(Node.from_url(u) for u in _words(v))
            if not kwargs["nodes"]:
                raise ConfigError("ESLENGINE_FREESWITCH names no node")
        if (v := take("API_KEYS")) is not None:
            kwargs["api_keys"] = frozenset(_words(v))
        if (v := take("ROUTE_TEMPLATE")) is not None:
            if "{number}" not in v and "{e164}" not in v:
                raise ConfigError("ESLENGINE_ROUTE_TEMPLATE must contain {number} or {e164}")
            kwargs["route_template"] = v
        if (v := take("GATEWAY")) is not None:
            kwargs["gateway"] = v
        if (v := take("USER_DOMAIN")) is not None:
            domains = tuple(w.lower() for w in _words(v))
            bad = [d for d in domains if not _DOMAIN.fullmatch(d)]
            if bad:
                raise ConfigError("ESLENGINE_USER_DOMAIN: %r is not a domain name" % bad[0])
            kwargs["user_domains"] = domains
        if (v := take("ALLOW")) is not None:
            kwargs["allow_patterns"] = _patterns("ESLENGINE_ALLOW", v)
        if (v := take("BLOCKED_PREFIXES")) is not None:
            kwargs["blocked_prefixes"] = () if v.strip().lower() == "none" else _words(v)
        if (v := take("ALLOW_UNVALIDATED_NUMBERS")) is not None:
            kwargs["allow_unvalidated_numbers"] = _flag("ESLENGINE_ALLOW_UNVALIDATED_NUMBERS", v)
        if (v := take("REFUSED_NUMBER_TYPES")) is not None:
            from .destinations import NUMBER_TYPES

            types = () if v.strip().lower() == "none" else tuple(w.lower() for w in _words(v))
            unknown = [t for t in types if t not in NUMBER_TYPES]
            if unknown:
                raise ConfigError("ESLENGINE_REFUSED_NUMBER_TYPES: unknown type %s (known: %s)" % (
                    unknown[0], ", ".join(sorted(NUMBER_TYPES))))
            kwargs["refused_number_types"] = types
        if (v := take("COUNTRIES")) is not None:
            codes = frozenset(w.upper() for w in _words(v))
            bad = sorted(c for c in codes if not re.fullmatch(r"[A-Z]{2}", c))
            if bad:
                raise ConfigError("ESLENGINE_COUNTRIES: %r is not a two-letter country code" % bad[0])
            kwargs["countries"] = codes
        if (v := take("DEFAULT_REGION")) is not None:
            region = v.strip().upper()
            if region and not known_region(region):
                raise ConfigError("ESLENGINE_DEFAULT_REGION: %r is not a region libphonenumber knows (an ISO 3166 "
                                  "code such as US, GB, DE)" % v.strip())
            kwargs["default_region"] = region
        if (v := take("SIP_DOMAINS")) is not None:
            kwargs["sip_domains"] = _patterns("ESLENGINE_SIP_DOMAINS", v)
        if (v := take("SIP_PROFILE")) is not None:
            kwargs["sip_profile"] = v
        if (v := take("RECORDINGS_DIR")) is not None:
            try:
                kwargs["recordings_dir"] = check_recordings_dir(v)
            except ConfigError as exc:
                raise ConfigError("ESLENGINE_RECORDINGS_DIR must be an absolute path of letters, digits and _./-") \
                    from exc
        if (v := take("TTS_ENGINE")) is not None:
            kwargs["tts_engine"] = v
        if (v := take("TTS_VOICE")) is not None:
            kwargs["tts_voice"] = v
        if (v := take("MEDIA_URL_PREFIXES")) is not None:
            for prefix in _words(v):
                try:
                    urls.parse_media_prefix(prefix)
                except ValueError as exc:
                    raise ConfigError("ESLENGINE_MEDIA_URL_PREFIXES: %s" % exc) from exc
            kwargs["media_url_prefixes"] = _words(v)
        if (v := take("WEBHOOK_ALLOW")) is not None:
            kwargs["webhook_allow"] = _patterns("ESLENGINE_WEBHOOK_ALLOW", v)
        if (v := take("WEBHOOK_ALLOW_NETWORKS")) is not None:
            try:
                kwargs["webhook_allow_networks"] = urls.parse_networks(v)
            except ValueError as exc:
                raise ConfigError("ESLENGINE_WEBHOOK_ALLOW_NETWORKS: %s" % exc) from exc
        if (v := take("WEBHOOK_SECRET")) is not None:
            kwargs["webhook_secret"] = v
        if (v := take("WIDGET_SECRET")) is not None:
            if v and (len(v) < 32 or not v.isascii() or not v.isprintable()):
                raise ConfigError("ESLENGINE_WIDGET_SECRET must be at least 32 printable ASCII characters "
                                  "(e.g. the output of: openssl rand -hex 32)")
            kwargs["widget_secret"] = v
        if (v := take("WIDGET_PER_DESTINATION")) is not None:
            kwargs["widget_per_destination"] = _positive_int("ESLENGINE_WIDGET_PER_DESTINATION", v)
        for name, key in (
            ("default_ring_timeout", "DEFAULT_RING_TIMEOUT"),
            ("max_ring_timeout", "MAX_RING_TIMEOUT"),
            ("concurrency", "CONCURRENCY"),
            ("claim_idle_ms", "CLAIM_IDLE_MS"),
            ("interactive_reserve", "INTERACTIVE_RESERVE"),
            ("record_ttl", "RECORD_TTL"),
            ("campaign_ttl", "CAMPAIGN_TTL"),
            ("dead_letter_max", "DEAD_LETTER_MAX"),
            ("cdr_max", "CDR_MAX"),
            ("max_attempts", "MAX_ATTEMPTS"),
            ("default_attempts", "DEFAULT_ATTEMPTS"),
            ("default_retry_backoff", "DEFAULT_RETRY_BACKOFF"),
            ("max_destinations", "MAX_DESTINATIONS"),
            ("max_call_duration", "MAX_CALL_DURATION"),
            ("webhook_concurrency", "WEBHOOK_CONCURRENCY"),
            ("webhook_max_age", "WEBHOOK_MAX_AGE"),
        ):
            if (v := take(key)) is not None:
                kwargs[name] = _positive_int("ESLENGINE_" + key, v)
        for name, key in (("esl_timeout", "ESL_TIMEOUT"), ("reconnect_max_delay", "RECONNECT_MAX_DELAY")):
            if (v := take(key)) is not None:
                kwargs[name] = _positive_float("ESLENGINE_" + key, v)
        if (v := take("BRIDGE")) is not None:
            if v.strip().lower() not in ("engine", "switch"):
                raise ConfigError("ESLENGINE_BRIDGE must be engine or switch, got %r" % v)
            kwargs["bridge"] = v.strip().lower()
        if (v := take("METRICS_PORT")) is not None:
            if not (v.strip().isascii() and v.strip().isdigit() and int(v) <= 65535):
                raise ConfigError("ESLENGINE_METRICS_PORT must be a port number, 0 to 65535 (0: no metrics server), "
                                  "got %r" % v)
            kwargs["metrics_port"] = int(v)
        if (v := take("METRICS_ADDRESS")) is not None:
            try:
                kwargs["metrics_address"] = str(ipaddress.ip_address(v.strip()))
            except ValueError:
                raise ConfigError("ESLENGINE_METRICS_ADDRESS must be an IP address (127.0.0.1, 0.0.0.0, ::1), "
                                  "got %r" % v) from None
        if (v := take("METRICS_TOKEN")) is not None:
            if not (v.isascii() and v.isprintable() and " " not in v):
                raise ConfigError("ESLENGINE_METRICS_TOKEN must be printable ASCII without blanks")
            kwargs["metrics_token"] = v
        if (v := take("LOG_LEVEL")) is not None:
            if v.strip().upper() not in LOG_LEVELS:
                raise ConfigError("ESLENGINE_LOG_LEVEL must be one of %s, got %r" % (", ".join(LOG_LEVELS), v))
            kwargs["log_level"] = v.strip().upper()
        if (v := take("LOG_FORMAT")) is not None:
            if v.strip().lower() not in LOG_FORMATS:
                raise ConfigError("ESLENGINE_LOG_FORMAT must be one of %s, got %r" % (", ".join(LOG_FORMATS), v))
            kwargs["log_format"] = v.strip().lower()
        config = cls(**kwargs)  # type: ignore[arg-type]
        for name, value in (("ESLENGINE_SIP_PROFILE", config.sip_profile), ("ESLENGINE_TTS_ENGINE", config.tts_engine),
                            ("ESLENGINE_TTS_VOICE", config.tts_voice), ("ESLENGINE_GATEWAY", config.gateway)):
            if value and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
                raise ConfigError("%s may hold letters, digits and _.- only" % name)
        if config.default_attempts > config.max_attempts:
            raise ConfigError("ESLENGINE_DEFAULT_ATTEMPTS exceeds ESLENGINE_MAX_ATTEMPTS")
        if config.default_ring_timeout > config.max_ring_timeout:
            raise ConfigError("ESLENGINE_DEFAULT_RING_TIMEOUT exceeds ESLENGINE_MAX_RING_TIMEOUT")
        return config
