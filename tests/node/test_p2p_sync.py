"""Reading a peer's run of headers: parsed, linked and proof-of-work checked before use."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consensus.block import Header
from consensus.genesis import genesis_header
from consensus.params import REGTEST
from node.p2p.sync import Misbehaved, read_header_run
from tests.node.conftest import solved_header

GENESIS = genesis_header(REGTEST)


@pytest.fixture(scope="module")
def headers() -> list[Header]:
    one = solved_header(GENESIS)
    return [one, solved_header(one)]


def test_a_header_run_comes_back_parsed_and_checked(headers: list[Header]) -> None:
    batch = read_header_run([h.raw.hex() for h in headers], REGTEST)
    assert batch.headers == headers
    assert (batch.checked, batch.failure) == (2, None)


def test_a_header_run_is_checked_up_to_its_first_bad_header(headers: list[Header]) -> None:
    bad = solved_header(headers[0], nonce_ok=False)
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
