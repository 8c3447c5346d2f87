"""Peer discovery through DNS, with the resolver and the "is this address mine" test injected.

What a node does with an orchestrator's answer for ``tasks.SERVICE`` or a headless
Service: one URL per distinct address on the name's port, never its own, nothing that is
not an address; a name that does not resolve (yet) is no error; new addresses reach the
peer table, which dials them. The settings that switch it on are checked here too, with
the admin token read from a file (how a swarm or Kubernetes secret reaches the node).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from node.config import Settings
from node.p2p.dns import (
    DnsDiscovery,
    DnsName,
    candidate_urls,
    is_local_address,
    resolve_addresses,
)
from node.p2p.peers import PeerTable

TASKS = DnsName("tasks.follower", 8000)
OWN = "10.0.1.7"


def nobody_is_me(address: str) -> bool:
    return False


class FakeDns:
    """A resolver that answers from a dict, and raises like getaddrinfo for a miss."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.records:
            raise OSError(-2, "Name or service not known")
        return self.records[host]


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks.follower", DnsName("tasks.follower", 8000)),
        (
            "ailedger-peers.default.svc.cluster.local:9000",
            DnsName("ailedger-peers.default.svc.cluster.local", 9000),
        ),
        (" Tasks.Node1 ", DnsName("tasks.node1", 8000)),
        ("localhost:1", DnsName("localhost", 1)),
    ],
)
def test_a_name_is_host_and_optional_port(text: str, expected: DnsName) -> None:
    assert DnsName.parse(text, 8000) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":8000",
        "http://tasks.a",
        "tasks.a:0",
        "tasks.a:65536",
        "tasks.a:x",
        "a b",
        "::1",
        "tasks.a:80/x",
    ],
)
def test_a_bad_name_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="peer DNS name"):
        DnsName.parse(text, 8000)


# --- the decision --------------------------------------------------------------------------


def test_every_address_becomes_one_url_on_the_names_port() -> None:
    addresses = ["10.0.1.9", "10.0.1.3", "10.0.1.9", "::ffff:10.0.1.3", "fd00::5"]
    assert candidate_urls(TASKS, addresses, nobody_is_me) == [
        "http://10.0.1.3:8000",
        "http://10.0.1.9:8000",
        "http://[fd00::5]:8000",
    ]


def test_our_own_address_is_skipped() -> None:
    urls = candidate_urls(TASKS, ["10.0.1.3", OWN], lambda address: address == OWN)
    assert urls == ["http://10.0.1.3:8000"]


def test_what_is_not_an_address_is_dropped() -> None:
    answer = ["not-an-ip", "0.0.0.0", "::", "224.0.0.1", "fe80::1%eth0", "10.0.1.3"]
    assert candidate_urls(TASKS, answer, nobody_is_me) == [
        "http://10.0.1.3:8000",
        "http://[fe80::1]:8000",
    ]


@given(st.lists(st.ip_addresses(), max_size=20))
def test_urls_are_distinct_and_never_our_own(addresses: list[object]) -> None:
    texts = [str(a) for a in addresses]
    own = set(texts[:2])
    urls = candidate_urls(TASKS, texts, lambda address: address in own)
    assert len(urls) == len(set(urls))
    assert all(url.startswith("http://") and url.endswith(":8000") for url in urls)
    assert not any(
        url.removeprefix("http://").removesuffix(":8000").strip("[]") in own for url in urls
    )


# --- the local resolver and the own-address test ---------------------------------------


def test_only_a_local_address_is_ours() -> None:
    assert is_local_address("127.0.0.1")
    assert not is_local_address("192.0.2.1")  # TEST-NET-1: never assigned to a host


async def test_the_event_loops_resolver_answers_with_addresses() -> None:
    addresses = await resolve_addresses("localhost", 8000)
    assert "127.0.0.1" in addresses or "::1" in addresses
    with pytest.raises(OSError):
        await resolve_addresses("no-such-host.invalid", 8000)


# --- rounds --------------------------------------------------------------------------------


def discovery(dns: FakeDns, table: PeerTable, *names: DnsName) -> DnsDiscovery:
    return DnsDiscovery(
        list(names),
        learn=lambda url: table.learn(url, source="dns"),
        every_s=0.01,
        own_port=8000,
        resolve=dns,
        is_local=lambda address: address == OWN,
    )


def table() -> PeerTable:
    return PeerTable(self_url=f"http://{OWN}:8000", max_outbound=8, max_inbound=8)


async def test_a_round_offers_every_task_but_us_to_the_peer_table() -> None:
    dns = FakeDns({"tasks.follower": ["10.0.1.3", OWN, "10.0.1.4"]})
    peers = table()
    offered = await discovery(dns, peers, TASKS).refresh()
    assert offered == ["http://10.0.1.3:8000", "http://10.0.1.4:8000"]
    assert sorted(p.url for p in peers.to_dial(now=0)) == offered
    assert {p.source for p in peers.all()} == {"dns"}


async def test_our_address_on_another_port_is_another_node() -> None:
    dns = FakeDns({"localhost": [OWN]})
    peers = table()
    offered = await discovery(dns, peers, DnsName("localhost", 8001)).refresh()
    assert offered == [f"http://{OWN}:8001"]


async def test_a_scaled_in_task_is_found_on_the_next_round() -> None:
    dns = FakeDns({"tasks.follower": ["10.0.1.3"]})
    peers = table()
    finder = discovery(dns, peers, TASKS)
    await finder.refresh()
    dns.records["tasks.follower"].append("10.0.1.8")
    assert await finder.refresh() == ["http://10.0.1.3:8000", "http://10.0.1.8:8000"]
    assert len(peers) == 2
    assert finder.found[TASKS] == ["http://10.0.1.3:8000", "http://10.0.1.8:8000"]


async def test_a_name_that_does_not_resolve_yet_does_not_stop_the_others() -> None:
    dns = FakeDns({"tasks.node1": ["10.0.1.2"]})
    peers = table()
    finder = discovery(dns, peers, DnsName("tasks.follower", 8000), DnsName("tasks.node1", 8000))
    assert await finder.refresh() == ["http://10.0.1.2:8000"]
    assert TASKS not in finder.found
    dns.records["tasks.follower"] = ["10.0.1.9"]
    assert await finder.refresh() == ["http://10.0.1.9:8000", "http://10.0.1.2:8000"]


async def test_a_bug_in_the_resolver_is_not_taken_for_a_missing_name() -> None:
    async def broken(host: str, port: int) -> Sequence[str]:
        raise RuntimeError("resolver bug")

    finder = DnsDiscovery(
        [TASKS], learn=print, every_s=1, own_port=8000, resolve=broken, is_local=nobody_is_me
    )
    with pytest.raises(RuntimeError):
        await finder.refresh()


async def test_run_resolves_again_every_interval_until_cancelled() -> None:
    dns = FakeDns({"tasks.follower": ["10.0.1.3"]})
    finder = discovery(dns, table(), TASKS)
    task = asyncio.create_task(finder.run())
    while len(dns.asked) < 3:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(dns.asked) == {("tasks.follower", 8000)}


# --- settings ------------------------------------------------------------------------------


def test_peer_dns_names_take_the_api_port_unless_they_name_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AILEDGER_PEER_DNS", "tasks.node1, tasks.follower:9000")
    settings = Settings(port=8001)
    assert settings.dns_names == [DnsName("tasks.node1", 8001), DnsName("tasks.follower", 9000)]
    assert settings.peer_dns_interval == 30.0


def test_a_bad_peer_dns_name_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="peer DNS name"):
        Settings(peer_dns=["http://tasks.node1"])


def test_the_admin_token_is_read_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "admin_token"
    secret.write_text("s3cret-token\n")
    assert Settings(admin_token_file=secret).admin_token == "s3cret-token"


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read the admin token file"), ("  \n", "is empty")],
)
def test_an_unusable_admin_token_file_is_a_settings_error(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    secret = tmp_path / "admin_token"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(ValidationError, match=problem):
        Settings(admin_token_file=secret)


def test_a_token_and_a_token_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "admin_token"
    secret.write_text("from-file")
    with pytest.raises(ValidationError, match="not both"):
        Settings(admin_token="given", admin_token_file=secret)
