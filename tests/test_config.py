"""Every setting: a good value gives the Config field it should, a bad one is
a ConfigError naming the variable, and a misspelt name is reported."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from eslengine.config import SETTINGS, Config, Node, unknown_settings
from eslengine.errors import ConfigError

# name -> (a good value, the field it sets, what the field holds then, a bad value or None)
CASES: dict[str, tuple[str, str, Any, str | None]] = {
    "REDIS_URL": ("redis://10.0.0.5:6380/2", "redis_url", "redis://10.0.0.5:6380/2", "http://x"),
    "REDIS_WAIT_REPLICAS": ("2", "redis_wait_replicas", 2, "-1"),
    "REDIS_SHARDS": ("6", "redis_shards", 6, "65"),
    "WORKER_SHARDS": ("0", "worker_shards", (0,), "1"),  # with one shard, only shard 0 exists
    "KEY_PREFIX": ("tenant-a", "key_prefix", "tenant-a", "a b"),
    "FREESWITCH": ("esl://:pw@10.0.0.9:8021?sps=50&max_sessions=200", "nodes",
                   (Node("10.0.0.9", 8021, "pw", sps=50, max_sessions=200),), "http://10.0.0.9"),
    "API_KEYS": ("k1, k2", "api_keys", frozenset({"k1", "k2"}), None),
    "ROUTE_TEMPLATE": ("loopback/{number}/eslengine", "route_template", "loopback/{number}/eslengine",
                       "sofia/gateway/x"),
    "GATEWAY": ("carrier1", "gateway", "carrier1", "a b"),
    "USER_DOMAIN": ("PBX.example.com,alt.example.com", "user_domains", ("pbx.example.com", "alt.example.com"),
                    "not a domain"),
    "ALLOW": (r"\+1555.*;\+44.*", "allow_patterns", (r"\+1555.*", r"\+44.*"), "+1("),
    "BLOCKED_PREFIXES": ("none", "blocked_prefixes", (), None),
    "ALLOW_UNVALIDATED_NUMBERS": ("1", "allow_unvalidated_numbers", True, "maybe"),
    "REFUSED_NUMBER_TYPES": ("premium_rate,shared_cost", "refused_number_types", ("premium_rate", "shared_cost"),
                             "expensive"),
    "COUNTRIES": ("us,ca", "countries", frozenset({"US", "CA"}), "USA"),
    "DEFAULT_REGION": ("gb", "default_region", "GB", "XX"),
    "SIP_DOMAINS": (r"pbx\.example\.com", "sip_domains", (r"pbx\.example\.com",), "a("),
    "SIP_PROFILE": ("internal", "sip_profile", "internal", "in ternal"),
    "RECORDINGS_DIR": ("/srv/recordings", "recordings_dir", "/srv/recordings", "relative/dir"),
    "TTS_ENGINE": ("flite", "tts_engine", "flite", "fl ite"),
    "TTS_VOICE": ("kal", "tts_voice", "kal", "k;al"),
    "MEDIA_URL_PREFIXES": ("https://media.example.com/audio", "media_url_prefixes",
                           ("https://media.example.com/audio",), "ftp://media.example.com"),
    "WEBHOOK_ALLOW": (r"https://hooks\.example\.com/.*", "webhook_allow", (r"https://hooks\.example\.com/.*",),
                      "https://(("),
    "WEBHOOK_ALLOW_NETWORKS": ("10.20.0.0/16", "webhook_allow_networks", ("10.20.0.0/16",),
                               "10.20.0.0/99"),
    "WEBHOOK_SECRET": ("s3cret", "webhook_secret", "s3cret", None),
    "DEFAULT_RING_TIMEOUT": ("25", "default_ring_timeout", 25, "soon"),
    "MAX_RING_TIMEOUT": ("90", "max_ring_timeout", 90, "-1"),
    "CONCURRENCY": ("500", "concurrency", 500, "lots"),
    "CLAIM_IDLE_MS": ("60000", "claim_idle_ms", 60000, "0"),
    "RECORD_TTL": ("3600", "record_ttl", 3600, "1h"),
    "CAMPAIGN_TTL": ("86400", "campaign_ttl", 86400, "30d"),
    "DEAD_LETTER_MAX": ("1000", "dead_letter_max", 1000, "x"),
    "CDR_MAX": ("5000", "cdr_max", 5000, "-1"),
    "MAX_ATTEMPTS": ("3", "max_attempts", 3, "x"),
    "DEFAULT_ATTEMPTS": ("2", "default_attempts", 2, "9"),  # more than MAX_ATTEMPTS (5)
    "DEFAULT_RETRY_BACKOFF": ("30", "default_retry_backoff", 30, "x"),
    "MAX_DESTINATIONS": ("3", "max_destinations", 3, "x"),
    "MAX_CALL_DURATION": ("600", "max_call_duration", 600, "x"),
    "WEBHOOK_CONCURRENCY": ("5", "webhook_concurrency", 5, "x"),
    "WEBHOOK_MAX_AGE": ("600", "webhook_max_age", 600, "x"),
    "ESL_TIMEOUT": ("2.5", "esl_timeout", 2.5, "slow"),
    "RECONNECT_MAX_DELAY": ("4", "reconnect_max_delay", 4.0, "-3"),
    "BRIDGE": ("Switch", "bridge", "switch", "both"),
    "LOG_LEVEL": ("debug", "log_level", "DEBUG", "chatty"),
    "LOG_FORMAT": ("JSON", "log_format", "json", "yaml"),
    "WIDGET_SECRET": ("w" * 40, "widget_secret", "w" * 40, "short"),
    "WIDGET_PER_DESTINATION": ("5", "widget_per_destination", 5, "0"),
    "METRICS_PORT": ("9108", "metrics_port", 9108, "70000"),
    "METRICS_ADDRESS": ("0.0.0.0", "metrics_address", "0.0.0.0", "localhost"),
    "METRICS_TOKEN": ("scrape-me", "metrics_token", "scrape-me", "two words"),
    "INTERACTIVE_RESERVE": ("4", "interactive_reserve", 4, "0"),
}


def test_every_setting_has_a_case() -> None:
    assert set(CASES) == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_good_value_sets_its_field(name: str) -> None:
    value, field, expected, _ = CASES[name]
    config = Config.from_env({"ESLENGINE_" + name: value})
    assert getattr(config, field) == expected
    # Unset or blank: the default.
    assert getattr(Config.from_env({"ESLENGINE_" + name: "  "}), field) == getattr(Config(), field)


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case[3] is not None))
def test_a_bad_value_is_an_error_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"ESLENGINE_" + name: CASES[name][3]})  # type: ignore[dict-item]
    assert "ESLENGINE_" + name in str(info.value) or name == "FREESWITCH", str(info.value)


def test_a_misspelt_setting_is_reported_with_the_likely_one() -> None:
    warnings = unknown_settings({"ESLENGINE_COUNTRY": "US", "ESLENGINE_REDIS_URL": "redis://x",
                                 "ESLENGINE_CONFORMANCE": "1", "PATH": "/bin", "ESLENGINE_ZZZ": "1"})
    assert warnings == ["ESLENGINE_COUNTRY is not a setting (did you mean ESLENGINE_COUNTRIES?); it is ignored",
                        "ESLENGINE_ZZZ is not a setting; it is ignored"]


def test_the_command_line_warns_of_a_misspelt_setting() -> None:
    proc = subprocess.run([sys.executable, "-m", "eslengine", "keys", "list"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "ESLENGINE_REDIS_URL": "redis://127.0.0.1:1/0",
                                           "ESLENGINE_COUNTRY": "US"})
    assert "ESLENGINE_COUNTRY is not a setting (did you mean ESLENGINE_COUNTRIES?)" in proc.stderr


@pytest.mark.parametrize(("value", "served"), [("2,0", (0, 2)), ("1, 1", (1,)), ("0,1,2", (0, 1, 2))])
def test_a_worker_serves_the_shards_it_names(value: str, served: tuple[int, ...]) -> None:
    config = Config.from_env({"ESLENGINE_REDIS_SHARDS": "3", "ESLENGINE_WORKER_SHARDS": value})
    assert (config.redis_shards, config.worker_shards) == (3, served)


@pytest.mark.parametrize("value", ["3", "-1", "a", "1,x", ","])
def test_a_shard_that_does_not_exist_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="ESLENGINE_WORKER_SHARDS"):
        Config.from_env({"ESLENGINE_REDIS_SHARDS": "3", "ESLENGINE_WORKER_SHARDS": value})
