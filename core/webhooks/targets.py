"""Where a webhook may send: http or https, to a host whose every address is a public one.

A URL that resolves to loopback, private, link-local, multicast or reserved addresses would let any
caller reach the servers beside steadyfit (server-side request forgery). It is refused when the webhook is
created and again before each delivery, since a name's addresses can change in between; a delivery then
connects to the very address it checked, so the name cannot change again in the meantime. A name that does
not resolve when the webhook is created is let through (its receiver may not be up yet): each delivery
to it fails until it does.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

SCHEMES = {"http": 80, "https": 443}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """A URL a webhook may not be sent to; the message says why."""


class Unresolved(UnsafeTarget):
    """The URL's host has no address now: nothing can be sent to it, but nothing it names is refused either."""


@dataclass(frozen=True)
class Target:
    """A URL and the address, checked, to connect to for it."""

    url: SplitResult
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (its name goes in `Host` and in TLS's SNI)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        netloc = host if self.url.port is None else f"{host}:{self.url.port}"
        return self.url._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        return self.url.netloc.rpartition("@")[2]


def parse(url: str) -> SplitResult:
    """The URL split, if it is an absolute http(s) URL with a host and no credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise UnsafeTarget(f"not a URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise UnsafeTarget("only http and https URLs can receive webhooks")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("the URL may not carry a user name or password; authenticate by the signature")
    return parts


def resolve(url: str, *, allow_private: bool) -> Target:
    """The URL and the address to send to: its host's first address, every one of which must be public
    unless `allow_private`."""
    parts = parse(url)
    host = str(parts.hostname)
    try:
        infos = socket.getaddrinfo(host, parts.port or SCHEMES[parts.scheme], type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolved(f"the host {host} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise UnsafeTarget(
                    f"the host {host} resolves to {address}, a loopback, private, link-local, multicast or "
                    "reserved address"
                )
    return Target(parts, str(addresses[0]))


def is_public(address: Address) -> bool:
    """Whether `address` is on the public internet (an IPv4 address inside IPv6 is judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    refused = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    return address.is_global and not refused
