"""Peer discovery through DNS (design.md §13): every address a name resolves to is a node.

An orchestrator names the members of a service in its DNS: Docker Swarm answers
``tasks.SERVICE`` with one A record per running task, a Kubernetes headless Service
answers its name with one record per ready pod. ``--peer-dns NAME[:PORT]`` resolves such
a name when the node starts and again every ``--peer-dns-interval`` seconds, and offers
``http://ADDRESS:PORT`` for every address found to the peer table, which dials it like any
other address. So replicas find each other without a ``--peer`` list per replica, and a
task that is added, rescheduled or restarted at a new address is found on the next round.

An address is only a place to dial: who answers there is settled by the handshake, never
by the address (the node's own address is skipped here, and a handshake that reaches the
node itself is refused there too). Addresses that disappear from DNS are not removed: the
peer table forgets an address that keeps failing, as it does for gossiped ones.

``candidate_urls`` is the decision, a plain function; ``DnsDiscovery`` runs it with an
injected resolver and an injected "is this address mine" test, so tests need no DNS.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

from node.config import DnsName

__all__ = [
    "DnsDiscovery",
    "DnsName",
    "Resolver",
    "candidate_urls",
    "is_local_address",
    "resolve_addresses",
]

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> addresses``: every A/AAAA record of ``host``; raises ``OSError``."""


def peer_url(address: str, port: int) -> str:
    """``http://ADDRESS:PORT``, with an IPv6 address in brackets (RFC 3986)."""
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


def candidate_urls(
    name: DnsName, addresses: Iterable[str], is_own: Callable[[str], bool]
) -> list[str]:
    """The URLs to offer the peer table for ``name``'s addresses: one per distinct
    address (``10.0.0.5`` and ``::ffff:10.0.0.5`` are one), none of our own, none that
    is not an IP address (a resolver answers with addresses; anything else is dropped),
    in a stable order."""
    seen: dict[str, None] = {}
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_unspecified or ip.is_multicast:
            continue
        seen.setdefault(str(ip), None)
    return [peer_url(address, name.port) for address in sorted(seen) if not is_own(address)]


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every A and AAAA record of ``host``, through the event loop's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(sockaddr[0]) for _, _, _, _, sockaddr in infos]


def is_local_address(address: str) -> bool:
    """True when ``address`` belongs to this host (or container): only a local address
    can be bound. Loopback counts as local (a name resolving to 127.0.0.1 is us)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return False
        raise
    return True


class DnsDiscovery:
    """Resolves ``names`` every ``every_s`` seconds and hands each candidate URL to
    ``learn`` (the peer table's; it ignores addresses it already knows).

    Our own node is a local address (``is_local``) on our own API port ``own_port``: a
    name may list this host's address on another port, which is another node.
    """

    def __init__(
        self,
        names: Sequence[DnsName],
        *,
        learn: Callable[[str], object],
        every_s: float,
        own_port: int,
        resolve: Resolver = resolve_addresses,
        is_local: Callable[[str], bool] = is_local_address,
    ) -> None:
        self.names = list(names)
        self.learn = learn
        self.every_s = every_s
        self.own_port = own_port
        self.resolve = resolve
        self.is_local = is_local
        self.found: dict[DnsName, list[str]] = {}
        """The URLs each name listed when it last resolved."""

    async def refresh(self) -> list[str]:
        """One round: resolve every name (concurrently), learn what they list, and
        return the URLs offered. A name that fails to resolve (a service with no task yet:
        NXDOMAIN) keeps its previous answer and is tried again next round."""
        answers = await asyncio.gather(
            *(self.resolve(name.host, name.port) for name in self.names), return_exceptions=True
        )
        offered: list[str] = []
        for name, answer in zip(self.names, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, OSError):
                    raise answer
                log.debug("peer dns: %s does not resolve: %s", name, answer)
                continue
            urls = candidate_urls(name, answer, self._is_own_on(name.port))
            if urls != self.found.get(name):
                log.info("peer dns: %s lists %s", name, ", ".join(urls) or "no other node")
            self.found[name] = urls
            offered.extend(urls)
        for url in offered:
            self.learn(url)
        return offered

    def _is_own_on(self, port: int) -> Callable[[str], bool]:
        if port != self.own_port:
            return lambda address: False
        return self.is_local

    async def run(self) -> None:
        """Refresh now and then every ``every_s`` seconds, until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("peer dns: refresh failed")
            await asyncio.sleep(self.every_s)
