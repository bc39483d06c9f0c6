"""The client's address, as limits and logs should see it.

Behind a balancer or reverse proxy every connection comes from the proxy; only
there is ``X-Forwarded-For`` worth anything, since any client can send the
header.  So it is read only when the peer is one of ``trusted_proxies``, and
then from the right: the first hop that is not itself a trusted proxy is the
client (hops left of it were written by the client and prove nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from stt.settings import IpNetwork

UNKNOWN = "unknown"
#: IPv6 clients usually hold a whole /64: per-address limits count that block as one.
IPV6_CLIENT_PREFIX = 64

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[IpNetwork, ...]
) -> str:
    """The peer's address, or the client a trusted proxy names in ``X-Forwarded-For``."""
    if not peer:
        return UNKNOWN
    peer_ip = parse_address(peer)
    if peer_ip is None or not _is_trusted(peer_ip, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    hop_ip = peer_ip
    for hop in reversed(hops):
        parsed = parse_address(hop)
        if parsed is None:
            break  # a garbled hop: the last trusted one is all that is known
        hop_ip = parsed
        if not _is_trusted(hop_ip, trusted):
            break
    return str(hop_ip)


def limit_key(address: str) -> str:
    """What per-address limits count: the address, or its /64 for IPv6."""
    ip = parse_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))
    return address


def parse_address(text: str) -> IpAddress | None:
    """An IP address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(ip: IpAddress, trusted: tuple[IpNetwork, ...]) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in trusted)
