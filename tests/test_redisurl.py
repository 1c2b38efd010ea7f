"""ESLENGINE_REDIS_URL: one server, a Sentinel-watched primary or a cluster."""

from __future__ import annotations

import pytest

from eslengine.config import Config
from eslengine.errors import ConfigError
from eslengine.redisurl import RedisTarget, RedisUrlError, parse_redis_url


@pytest.mark.parametrize(("url", "target"), [
    ("redis://10.0.0.5:6380/2", RedisTarget("single", url="redis://10.0.0.5:6380/2")),
    ("rediss://:pw@h/0", RedisTarget("single", url="rediss://:pw@h/0")),
    ("unix:///run/redis.sock?db=1", RedisTarget("single", url="unix:///run/redis.sock?db=1")),
    ("redis+sentinel://s1:26380,s2,s3:5000/mymaster",
     RedisTarget("sentinel", hosts=(("s1", 26380), ("s2", 26379), ("s3", 5000)), service="mymaster")),
    ("redis+sentinel://:p%40ss@10.0.0.1/main/3",
     RedisTarget("sentinel", hosts=(("10.0.0.1", 26379),), service="main", db=3, password="p@ss")),
    ("redis+sentinel://app:pw@h:1/main/?sentinel_password=sp",
     RedisTarget("sentinel", hosts=(("h", 1),), service="main", username="app", password="pw",
                 sentinel_password="sp")),
    ("REDISS+SENTINEL://secret@[::1]:26379/m",
     RedisTarget("sentinel", hosts=(("::1", 26379),), service="m", password="secret", tls=True)),
    ("redis+cluster://n1:7000,n2:7001,[fe80::1]", RedisTarget("cluster", hosts=(
        ("n1", 7000), ("n2", 7001), ("fe80::1", 6379)))),
    ("rediss+cluster://:pw@n1:7000/0", RedisTarget("cluster", hosts=(("n1", 7000),), password="pw", tls=True)),
    ("redis+cluster://n1 , n2:7001/", RedisTarget("cluster", hosts=(("n1", 6379), ("n2", 7001)))),
])
def test_a_url_names_its_target(url: str, target: RedisTarget) -> None:
    assert parse_redis_url(url) == target


@pytest.mark.parametrize(("url", "reason"), [
    ("http://x", "the scheme must be"),
    ("redis+proxy://h/x", "the scheme must be"),
    ("h:6379", "not a URL"),
    ("redis+sentinel:///mymaster", "no host"),
    ("redis+sentinel://h1,,h2/m", "an empty entry"),
    ("redis+sentinel://h1:26379", "no service name"),
    ("redis+sentinel://h1:26379/", "no service name"),
    ("redis+sentinel://h1:99999/m", "bad port"),
    ("redis+sentinel://h1:x/m", "bad port"),
    ("redis+sentinel://h1:/m", "bad port"),
    ("redis+sentinel://h1/m/x", "not a number"),
    ("redis+sentinel://h1/m/1/2", "more than /<service>/<db>"),
    ("redis+sentinel://h1/m?db=2", "unknown option 'db'"),
    ("redis+cluster://n1:7000/1", "database 0 only"),
    ("redis+cluster://n1:7000/0/1", "more than /<db>"),
    ("redis+cluster://n1:7000?sentinel_password=x", "unknown option"),
    ("redis+cluster://::1:7000", "IPv6 address in brackets"),
    ("redis+cluster://[::1:7000", "bad address"),
    ("redis+cluster://[::1]x", "bad address"),
])
def test_a_bad_url_says_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(RedisUrlError, match=reason.replace("(", r"\(")):
        parse_redis_url(url)


def test_a_bad_setting_is_a_config_error_naming_it_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"ESLENGINE_REDIS_URL": "redis+sentinel://:hunter2@h1:0/m"})
    assert str(caught.value).startswith("ESLENGINE_REDIS_URL redis+sentinel://:***@h1:0/m: bad port")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["redis+sentinel://a:1,b:2/mymaster/0", "rediss+cluster://a:7000,b:7001"])
def test_a_sentinel_or_cluster_url_is_a_good_setting(url: str) -> None:
    assert Config.from_env({"ESLENGINE_REDIS_URL": url}).redis_url == url


def test_a_printed_config_shows_no_sentinel_password() -> None:
    config = Config.from_env({"ESLENGINE_REDIS_URL": "redis+sentinel://:pw1@a:1,b:2/m?sentinel_password=pw2"})
    shown = repr(config)
    assert "redis+sentinel://:***@a:1,b:2/m?sentinel_password=***" in shown
    assert "pw1" not in shown and "pw2" not in shown
