"""Reading a peer's run of headers: parsed, linked and proof-of-work checked before use."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consensus.block import ZERO_HASH, Header
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from consensus.pow import bits_to_target
from node.miner import mine_once
from node.p2p.sync import Misbehaved, read_header_run

GENESIS = genesis_header(REGTEST)


def child(parent: Header, *, nonce_ok: bool = True) -> Header:
    """A header on ``parent`` whose proof of work passes (or, ``nonce_ok=False``, fails)."""
    header = Header(
        version=1,
        height=parent.height + 1,
        prev_hash=parent.hash,
        merkle_root=ZERO_HASH,
        timestamp=parent.timestamp + 1_000,
        bits=REGTEST.pow_limit_bits,
        miner=ZERO_HASH,
        nonce=0,
    )
    target = bits_to_target(header.bits)
    if nonce_ok:
        return mine_once(header, target)
    return next(h for n in range(1 << 16) if int((h := header.with_nonce(n)).hash, 16) > target)


@pytest.fixture(scope="module")
def headers() -> list[Header]:
    one = child(GENESIS)
    return [one, child(one)]


def test_a_header_run_comes_back_parsed_and_checked(headers: list[Header]) -> None:
    batch = read_header_run([h.raw.hex() for h in headers], REGTEST)
    assert batch.headers == headers
    assert (batch.checked, batch.failure) == (2, None)


def test_a_header_run_is_checked_up_to_its_first_bad_header(headers: list[Header]) -> None:
    bad = child(headers[0], nonce_ok=False)
    batch = read_header_run([headers[0].raw.hex(), bad.raw.hex()], REGTEST)
    assert batch.headers == [headers[0], bad]
    assert batch.checked == 1
    assert batch.failure == f"invalid header {bad.hash}: high-hash"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda hexes: [*hexes, 7], "header is not a hex string"),
        (lambda hexes: [*hexes, "zz"], "bad-header: header is not hex"),
        (lambda hexes: [*hexes, "00" * 127], "bad-header"),
        (lambda hexes: hexes[::-1], "non-connecting headers: the run is not a chain"),
    ],
)
def test_a_malformed_header_run_is_misbehaviour_whatever_came_before(
    headers: list[Header], mangle: Callable[[list[object]], list[object]], reason: str
) -> None:
    with pytest.raises(Misbehaved) as caught:
        read_header_run(mangle([h.raw.hex() for h in headers]), REGTEST)
    assert reason in caught.value.reason
