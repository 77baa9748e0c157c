"""Per-connection upstream resolution with a short TTL cache.

vsock-proxy cached the first DNS answer forever (#553/#593/#606), later honoured the record TTL,
sent literal IPs through DNS (#716) and once bypassed /etc/resolv.conf (#623). Here:

* names go through ``loop.getaddrinfo``, i.e. the system resolver and /etc/resolv.conf;
* getaddrinfo does not expose the record TTL, so answers are cached for a configurable time
  (default 30 s) and re-resolved on the first connection after that;
* literal IPv4/IPv6 addresses never touch DNS;
* ``family`` implements ``-4`` / ``-6``: only answers of that family are used;
* concurrent lookups of the same name share one in-flight query.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import UpstreamUnavailableError

__all__ = ["DEFAULT_DNS_TTL", "Address", "Resolver"]

DEFAULT_DNS_TTL = 30.0

#: (family, sockaddr) ready for ``socket.socket(family)`` and ``connect(sockaddr)``.
Address = tuple[int, tuple[Any, ...]]
GetAddrInfo = Callable[..., Awaitable[list[tuple[Any, ...]]]]


def literal_address(host: str, port: int) -> Address | None:
    """The address for an IP literal, or ``None`` if ``host`` is a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 4:
        return (int(socket.AF_INET), (str(ip), port))
    return (int(socket.AF_INET6), (str(ip), port, 0, 0))


class Resolver:
    """Resolve upstream host names with a TTL cache.

    Args:
        ttl: seconds an answer is reused; 0 re-resolves on every connection.
        family: ``socket.AF_UNSPEC`` (default), ``AF_INET`` (``-4``) or ``AF_INET6`` (``-6``).
        clock: monotonic clock, a parameter so tests can pin it.
        getaddrinfo: async getaddrinfo; defaults to the running loop's.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_DNS_TTL,
        family: int = socket.AF_UNSPEC,
        clock: Callable[[], float] = time.monotonic,
        getaddrinfo: GetAddrInfo | None = None,
    ) -> None:
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        self._ttl = ttl
        self._family = family
        self._clock = clock
        self._getaddrinfo = getaddrinfo
        self._cache: dict[tuple[str, int], tuple[float, tuple[Address, ...]]] = {}
        self._inflight: dict[tuple[str, int], asyncio.Task[tuple[Address, ...]]] = {}
        self.lookups = 0  # queries actually sent to getaddrinfo (observable in tests)

    async def resolve(self, host: str, port: int) -> tuple[Address, ...]:
        """Return the addresses to try for ``host:port``, in resolver order.

        Raises:
            UpstreamUnavailableError: the name does not resolve, or has no address of the
                requested family.
        """
        literal = literal_address(host, port)
        if literal is not None:
            if self._family not in (socket.AF_UNSPEC, literal[0]):
                raise UpstreamUnavailableError(
                    f"{host} is not an address of the family selected by -4/-6"
                )
            return (literal,)
        key = (host, port)
        cached = self._cache.get(key)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        task = self._inflight.get(key)
        if task is None:
            # The query runs in its own task so that a connection timing out (and cancelling
            # its wait) neither cancels nor poisons the lookup other connections share.
            task = asyncio.get_running_loop().create_task(self._lookup(host, port))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._store(key, done))
        return await asyncio.shield(task)

    def _store(self, key: tuple[str, int], task: asyncio.Task[tuple[Address, ...]]) -> None:
        del self._inflight[key]
        if not task.cancelled() and task.exception() is None:
            self._cache[key] = (self._clock() + self._ttl, task.result())

    async def _lookup(self, host: str, port: int) -> tuple[Address, ...]:
        getaddrinfo = self._getaddrinfo or asyncio.get_running_loop().getaddrinfo
        self.lookups += 1
        try:
            infos = await getaddrinfo(host, port, family=self._family, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UpstreamUnavailableError(f"cannot resolve {host}: {exc}") from exc
        seen: list[Address] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address: Address = (int(family), tuple(sockaddr))
            if address not in seen:
                seen.append(address)
        if not seen:
            raise UpstreamUnavailableError(f"{host} has no address of the requested family")
        return tuple(seen)
