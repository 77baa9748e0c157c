"""Per-connection upstream resolution: TTL cache, literals, -4/-6."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from proxy_testkit import run

from enclave_kms.proxy import UpstreamUnavailableError
from enclave_kms.proxy._resolver import Resolver


class FakeDns:
    """An async getaddrinfo with a scripted answer per name; counts queries."""

    def __init__(self, answers: dict[str, list[tuple[int, str]]]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    async def __call__(self, host: str, port: int, *, family: int, type: int) -> list[Any]:
        self.queries.append(host)
        await asyncio.sleep(0)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                fam,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port) if fam == socket.AF_INET else (ip, port, 0, 0),
            )
            for fam, ip in self.answers[host]
            if family in (socket.AF_UNSPEC, fam)
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


V4, V6 = socket.AF_INET, socket.AF_INET6


def test_answers_are_cached_for_the_ttl_then_refreshed() -> None:
    dns = FakeDns({"kms.example": [(V4, "10.0.0.1")]})
    clock = Clock()
    resolver = Resolver(ttl=30, clock=clock, getaddrinfo=dns)

    async def scenario() -> None:
        assert await resolver.resolve("kms.example", 443) == ((V4, ("10.0.0.1", 443)),)
        clock.now += 29
        await resolver.resolve("kms.example", 443)
        assert dns.queries == ["kms.example"]  # served from the cache
        dns.answers["kms.example"] = [(V4, "10.0.0.2")]
        clock.now += 2  # past the TTL: the next connection re-resolves
        assert await resolver.resolve("kms.example", 443) == ((V4, ("10.0.0.2", 443)),)
        assert dns.queries == ["kms.example", "kms.example"]

    run(scenario())


def test_zero_ttl_resolves_every_time() -> None:
    dns = FakeDns({"kms.example": [(V4, "10.0.0.1")]})
    resolver = Resolver(ttl=0, clock=Clock(), getaddrinfo=dns)

    async def scenario() -> None:
        for _ in range(3):
            await resolver.resolve("kms.example", 443)

    run(scenario())
    assert len(dns.queries) == 3


def test_literal_ips_never_reach_dns() -> None:
    dns = FakeDns({})
    resolver = Resolver(getaddrinfo=dns)

    async def scenario() -> None:
        assert await resolver.resolve("192.0.2.1", 443) == ((V4, ("192.0.2.1", 443)),)
        assert await resolver.resolve("2001:db8::1", 443) == ((V6, ("2001:db8::1", 443, 0, 0)),)

    run(scenario())
    assert dns.queries == []


def test_family_restricts_answers_and_literals() -> None:
    dns = FakeDns({"dual.example": [(V6, "2001:db8::1"), (V4, "10.0.0.1")]})
    only_v4 = Resolver(family=V4, getaddrinfo=dns)
    only_v6 = Resolver(family=V6, getaddrinfo=dns)

    async def scenario() -> None:
        assert await only_v4.resolve("dual.example", 1) == ((V4, ("10.0.0.1", 1)),)
        assert await only_v6.resolve("dual.example", 1) == ((V6, ("2001:db8::1", 1, 0, 0)),)
        with pytest.raises(UpstreamUnavailableError, match="-4/-6"):
            await only_v4.resolve("::1", 1)

    run(scenario())


def test_unresolvable_name_is_a_typed_error() -> None:
    resolver = Resolver(getaddrinfo=FakeDns({}))
    with pytest.raises(UpstreamUnavailableError, match=r"cannot resolve nowhere\.example"):
        run(resolver.resolve("nowhere.example", 443))


def test_concurrent_lookups_share_one_query() -> None:
    dns = FakeDns({"kms.example": [(V4, "10.0.0.1")]})
    resolver = Resolver(getaddrinfo=dns)

    async def scenario() -> None:
        answers = await asyncio.gather(*(resolver.resolve("kms.example", 443) for _ in range(20)))
        assert len(set(answers)) == 1

    run(scenario())
    assert dns.queries == ["kms.example"]


def test_system_resolver_resolves_localhost() -> None:
    resolver = Resolver(family=V4)
    assert run(resolver.resolve("localhost", 80))[0] == (V4, ("127.0.0.1", 80))
