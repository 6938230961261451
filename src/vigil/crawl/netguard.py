"""SSRF guard: refuse URLs whose host resolves to an address a public crawler must never reach.

A gallery page, a feed or a redirect can point the crawler anywhere; without this check a hostile
source could make it fetch cloud metadata (``http://169.254.169.254/``), an admin port on loopback,
or a service on the private network, and store the answer as "media". Every URL and every redirect
hop is resolved here first; the crawler then connects to the very addresses that were vetted
(see :func:`vigil.crawl.fetch`), so a DNS answer that changes between check and connect (DNS
rebinding) cannot slip through.

Trusted local sources (the embedded zoo gallery on loopback) may reach private and loopback
addresses with ``allow_private``; link-local (cloud metadata), multicast, unspecified and reserved
addresses stay refused for every source.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from vigil.config.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Schemes the crawler speaks; ``file:``, ``ftp:``, ``gopher:`` … are refused outright.
ALLOWED_SCHEMES = frozenset({"http", "https"})


class BlockedAddress(InputError):
    """The URL is refused: its host is not public (or cannot be resolved, or the URL is unusable).

    ``reason`` is a stable code (``blocked_address``, ``unresolvable`` or ``unsupported_url``);
    ``detail`` says which host and address, for people.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, Teredo), judged in its place."""
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """False for private, loopback, link-local, reserved, multicast, unspecified and other special
    ranges (carrier NAT, documentation, benchmarking…); IPv4-mapped/6to4/Teredo IPv6 forms are
    judged by the IPv4 address they carry, so ``::ffff:127.0.0.1`` is loopback too."""
    if (embedded := _embedded_ipv4(ip)) is not None:
        return is_public_address(embedded)
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified):
        return False
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return False  # carrier-grade NAT: not global, and not flagged private by every Python
    return ip.is_global


def is_never_allowed(ip: IPAddress) -> bool:
    """Addresses refused even for ``allow_private`` sources: link-local (cloud metadata lives at
    169.254.169.254), multicast, unspecified (0.0.0.0 reaches the local host) and reserved.
    ``allow_private`` is for a trusted gallery on loopback or the LAN, not for those."""
    if (embedded := _embedded_ipv4(ip)) is not None:
        return is_never_allowed(embedded)
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to (a literal IP resolves to itself), deduplicated."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedAddress("unresolvable", f"cannot resolve host {host!r}: {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedAddress("unresolvable", f"host {host!r} has no address")
    return addresses


def check_url(url: str, allow_private: bool) -> list[str]:
    """Resolve ``url``'s host and return its addresses (as strings) if the crawler may connect.

    Raises :class:`BlockedAddress` when the scheme is not http(s), the host is missing or cannot
    be resolved, when any address is link-local/multicast/unspecified/reserved, or, unless
    ``allow_private``, when *any* address is not public: a name with one public and one private
    address is refused, since the connection could go to either.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise BlockedAddress("unsupported_url", f"{url!r}: only http and https are crawled")
    host = parts.hostname
    if not host:
        raise BlockedAddress("unsupported_url", f"{url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise BlockedAddress("unsupported_url", f"{url!r}: {exc}") from exc
    addresses = resolve_host(host, port)
    never = [str(ip) for ip in addresses if is_never_allowed(ip)]
    if never:
        raise BlockedAddress(
            "blocked_address",
            f"{host} resolves to {', '.join(never)} (link-local, multicast, unspecified or reserved); "
            "never crawled, not even for allow_private sources")
    if not allow_private:
        refused = [str(ip) for ip in addresses if not is_public_address(ip)]
        if refused:
            raise BlockedAddress(
                "blocked_address",
                f"{host} resolves to non-public address(es) {', '.join(refused)}; "
                "only sources marked allow_private may reach private or loopback hosts",
            )
    return [str(ip) for ip in addresses]


__all__ = ["ALLOWED_SCHEMES", "BlockedAddress", "check_url", "is_never_allowed", "is_public_address",
           "resolve_host"]
