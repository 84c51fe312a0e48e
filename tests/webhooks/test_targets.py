"""Where a webhook may send, how a delivery is signed, and when a failed one is tried again."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from core.settings import Settings
from core.states import DeliveryStatus
from core.webhooks import signing, targets
from workers.webhooks import outcome

REFUSED = [
    "ftp://example.com/hooks",  # not http(s)
    "http:///hooks",  # no host
    "https://user:pass@example.com/hooks",  # credentials in the URL
    "http://127.0.0.1:8000/hooks",  # loopback
    "http://localhost/hooks",
    "http://[::1]/hooks",
    "http://10.1.2.3/hooks",  # private
    "http://192.168.0.7/hooks",
    "http://169.254.169.254/latest/meta-data",  # link-local: a cloud's metadata service
    "http://224.0.0.1/hooks",  # multicast
    "http://240.0.0.1/hooks",  # reserved
    "http://0.0.0.0/hooks",  # unspecified
    "http://[::ffff:127.0.0.1]/hooks",  # loopback inside IPv6
    "http://100.64.0.1/hooks",  # shared address space (carrier-grade NAT): not public
]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_that_are_not_http_or_reach_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(targets.UnsafeTarget):
        targets.resolve(url, allow_private=False)


def test_allowing_private_addresses_lets_loopback_through_but_not_other_schemes() -> None:
    assert targets.resolve("http://127.0.0.1:9/hooks", allow_private=True).address == "127.0.0.1"
    with pytest.raises(targets.UnsafeTarget):
        targets.resolve("file:///etc/passwd", allow_private=True)


def test_public_addresses_are_public() -> None:
    assert targets.is_public(ipaddress.ip_address("93.184.215.14"))
    assert targets.is_public(ipaddress.ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
    assert not targets.is_public(ipaddress.ip_address("fd00::1"))  # unique local
    assert not targets.is_public(ipaddress.ip_address("fe80::1"))  # link-local


def test_a_delivery_goes_to_the_checked_address_with_the_name_kept_for_host_and_tls() -> None:
    target = targets.Target(urlsplit("https://hooks.example.com:8443/in?x=1"), "93.184.215.14")
    assert target.pinned_url == "https://93.184.215.14:8443/in?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert targets.Target(urlsplit("http://example.com/in"), "2606:2800::1").pinned_url == "http://[2606:2800::1]/in"


def test_the_signature_is_the_hmac_sha256_of_the_time_a_dot_and_the_body() -> None:
    # `printf '1700000000.{"id":"e"}' | openssl dgst -sha256 -hmac whsec_test`
    expected = "7d00fb8eebc2d72903387c74cb0a32f29849952b82c96e35325cc89d264f93c9"
    assert signing.signature("whsec_test", 1_700_000_000, b'{"id":"e"}') == f"t=1700000000,v1={expected}"


def test_a_failed_attempt_waits_twice_as_long_as_the_one_before_up_to_the_cap_and_the_last_fails() -> None:
    settings = Settings(webhook_retry_seconds=10, webhook_max_retry_seconds=100, webhook_max_attempts=8)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = [outcome(False, attempt, now, settings) for attempt in range(1, 8)]
    assert waits == [(DeliveryStatus.PENDING, now + timedelta(seconds=s)) for s in (10, 20, 40, 80, 100, 100, 100)]
    assert outcome(False, 8, now, settings) == (DeliveryStatus.FAILED, now)
    assert outcome(True, 8, now, settings) == (DeliveryStatus.SUCCEEDED, now)
