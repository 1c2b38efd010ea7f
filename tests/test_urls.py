"""Which URLs and addresses a call may use: tables of input and answer."""

from __future__ import annotations

import pytest

from eslengine import urls


@pytest.mark.parametrize(("address", "networks", "allowed"), [
    ("93.184.216.34", (), True),
    ("2606:4700::1111", (), True),
    ("127.0.0.1", (), False),
    ("10.1.2.3", (), False),
    ("172.16.0.1", (), False),
    ("192.168.1.1", (), False),
    ("169.254.169.254", (), False),  # cloud metadata
    ("100.64.0.1", (), False),  # shared address space
    ("0.0.0.0", (), False),
    ("224.0.0.1", (), False),
    ("255.255.255.255", (), False),
    ("192.0.2.1", (), False),  # documentation
    ("::1", (), False),
    ("::", (), False),
    ("fe80::1%eth0", (), False),
    ("fc00::1", (), False),
    ("ff02::1", (), False),
    ("::ffff:127.0.0.1", (), False),  # IPv4-mapped
    ("::ffff:93.184.216.34", (), True),
    ("64:ff9b::a9fe:a9fe", (), False),  # NAT64 of 169.254.169.254
    ("64:ff9b::5db8:d822", (), True),  # NAT64 of 93.184.216.34
    ("2002:7f00:1::1", (), False),  # 6to4 of 127.0.0.1
    ("127.0.0.1", ("127.0.0.0/8",), True),
    ("::ffff:127.0.0.1", ("127.0.0.0/8",), True),
    ("10.1.2.3", ("127.0.0.0/8",), False),
    ("10.1.2.3", ("10.1.0.0/16", "::1/128"), True),
    ("::1", ("10.1.0.0/16", "::1/128"), True),
    ("not an address", (), False),
])
def test_address_allowed(address: str, networks: tuple[str, ...], allowed: bool) -> None:
    assert urls.address_allowed(address, networks) is allowed


@pytest.mark.parametrize(("pattern", "host"), [
    (r"https://hooks\.example\.com/.*", "hooks.example.com"),
    (r"https://hooks.example.com/.*", "hooks.example.com"),
    (r"^https?://Hooks\.Example\.com(:[0-9]+)?/.*$", "hooks.example.com"),
    (r"https://hooks\.example\.com(/.*)?", "hooks.example.com"),
    (r"http://127\.0\.0\.1:[0-9]+/hook", "127.0.0.1"),
    (r"https://hooks\.example\.com", "hooks.example.com"),
    (r"https://hooks\.example\.com.*", None),  # .* runs on into the host
    (r"https://hooks\.example\.co.?/x", None),
    (r"https://[a-z]+\.example\.com/.*", None),
    (r"https://(hooks|api)\.example\.com/.*", None),
    (r"https://hooks\.example\.com(\.evil)?/.*", None),
    (r"https://hooks\.example\.com/.*|https://.*", None),  # a second alternative names no host
    (r"https://hooks\.example\.com/(a|b)", "hooks.example.com"),
    (r".*", None),
])
def test_literal_host(pattern: str, host: str | None) -> None:
    assert urls.literal_host(pattern) == host


def test_unchecked_hosts_names_the_patterns_only_matched() -> None:
    assert urls.unchecked_hosts([r"https://hooks\.example\.com/.*", r"https://[a-z]+\.example\.com/.*"]) == [
        r"https://[a-z]+\.example\.com/.*"]


@pytest.mark.parametrize("prefix", ["media.example.com", "ftp://media.example.com/", "https://u@media.example.com/",
                                    "https://media.example.com/?a=1", "https://media.example.com:99999/", "ftp://"])
def test_a_media_prefix_must_be_an_http_url_of_a_host(prefix: str) -> None:
    with pytest.raises(ValueError):
        urls.parse_media_prefix(prefix)


@pytest.mark.parametrize(("prefixes", "url", "allowed"), [
    (("https://",), "https://anywhere.example.net/a.wav", True),  # only a scheme: any host
    (("https://",), "http://anywhere.example.net/a.wav", False),
    (("https://",), "https://anywhere.example.net/x/../a.wav", False),
    (("not a url", "https://media.example.com/"), "https://media.example.com/a.wav", True),
    (("not a url",), "https://media.example.com/a.wav", False),
])
def test_media_url_allowed(prefixes: tuple[str, ...], url: str, allowed: bool) -> None:
    assert urls.media_url_allowed(url, prefixes) is allowed
