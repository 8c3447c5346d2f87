"""The Python client and the light verifier, against fake nodes that may lie.

Each fake node holds a real regtest chain (mined here with ``consensus.pow.solve``, about
two hashes a block) of real signed transactions, and answers the four API routes the
verifier uses from it. A fake can be told to lie in one way; the verifier must notice.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from consensus.block import ZERO_HASH, Block, Header
from consensus.errors import InvalidBlock, InvalidTx
from consensus.genesis import genesis_block
from consensus.keys import private_key_from_pem, private_key_from_seed, public_key_hex
from consensus.merkle import inclusion_proof, merkle_root
from consensus.params import REGTEST
from consensus.pow import bits_to_target, block_work, check_pow, solve
from consensus.tx import Transaction, sign_tx, verify_signature
from node import cli
from node.client import ApiError, Client, NodeUnavailable, new_nonce
from node.manifest import digest_path
from node.verifier import VerifyReport, verify_artifact

ALICE = private_key_from_seed(b"a" * 32)
MALLORY = private_key_from_seed(b"m" * 32)
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
NOW = REGTEST.genesis_timestamp_ms + 86_400_000
WORK = block_work(bits_to_target(REGTEST.pow_limit_bits))

_nonces = iter(range(1, 10**6))


def clock() -> int:
    return NOW


def dataset_tx(digest: str = DIGEST, name: str = "reviews", key: Any = ALICE) -> Transaction:
    return sign_tx(
        key,
        network="regtest",
        kind="dataset",
        payload={"name": name, "digest": digest, "size": 10},
        nonce=next(_nonces),
        timestamp=REGTEST.genesis_timestamp_ms,
    )


def revocation_tx(subject: str, key: Any = ALICE, reason: str = "leaked PII") -> Transaction:
    return sign_tx(
        key,
        network="regtest",
        kind="revocation",
        payload={"subject": subject, "reason": reason},
        nonce=next(_nonces),
        timestamp=REGTEST.genesis_timestamp_ms,
    )


def mine(parent: Header, txs: Iterable[Transaction] = (), *, prev_hash: str | None = None) -> Block:
    """A regtest block on ``parent`` whose proof of work holds."""
    txs = tuple(txs)
    template = Header(
        version=1,
        height=parent.height + 1,
        prev_hash=parent.hash if prev_hash is None else prev_hash,
        merkle_root=merkle_root([tx.leaf_bytes for tx in txs]).hex(),
        timestamp=parent.timestamp + 1_000,
        bits=REGTEST.pow_limit_bits,
        miner=ZERO_HASH,
        nonce=0,
    )
    nonce = solve(template.prefix(), bits_to_target(template.bits), 0, 10_000)
    assert nonce is not None
    return Block(template.with_nonce(nonce), txs)


def chain_of(*bodies: Iterable[Transaction]) -> list[Block]:
    blocks = [genesis_block(REGTEST)]
    for txs in bodies:
        blocks.append(mine(blocks[-1].header, txs))
    return blocks


def failing_pow(header: Header) -> Header:
    """``header`` with the first nonce whose hash misses the target."""
    for nonce in range(10_000):
        candidate = header.with_nonce(nonce)
        try:
            check_pow(bytes.fromhex(candidate.hash), candidate.bits, REGTEST)
        except InvalidBlock:
            return candidate
    raise AssertionError("no failing nonce")


@dataclass
class FakeNode:
    """A node's read API over ``blocks``; the hooks make it lie."""

    blocks: list[Block]
    network: str = "regtest"
    page_size: int = 2
    headers_hex: list[str] | None = None
    patch_proof: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    revoked_by: dict[str, str] = field(default_factory=dict)
    extra_records: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def located(self) -> dict[str, tuple[Block, int]]:
        return {tx.txid: (b, i) for b in self.blocks for i, tx in enumerate(b.transactions)}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, query = request.url.path, request.url.params
        if path == "/v1/status":
            tip = self.blocks[-1]
            return httpx.Response(
                200,
                json={
                    "network": self.network,
                    "genesis_hash": self.blocks[0].hash,
                    "height": tip.height,
                    "best_hash": tip.hash,
                },
            )
        if path == "/v1/headers":
            start, count = int(query["from_height"]), int(query["count"])
            served = self.headers_hex or [b.header.raw.hex() for b in self.blocks]
            return httpx.Response(200, json={"headers": served[start : start + count]})
        if path == "/v1/records":
            return self.records(query.get("digest"), int(query.get("cursor") or 0))
        if path.startswith("/v1/transactions/") and path.endswith("/proof"):
            return self.proof(path.split("/")[3])
        return httpx.Response(404, json={"error": {"code": "not-found", "message": path}})

    def records(self, digest: str | None, start: int) -> httpx.Response:
        views = [
            self.view(tx, block)
            for block in reversed(self.blocks)
            for tx in block.transactions
            if digest in (tx.payload.get("digest"), tx.payload.get("output_digest"))
        ] + self.extra_records
        page = views[start : start + self.page_size]
        more = start + self.page_size < len(views)
        return httpx.Response(
            200,
            json={"records": page, "next_cursor": str(start + self.page_size) if more else None},
        )

    def view(self, tx: Transaction, block: Block) -> dict[str, Any]:
        revoker = self.revoked_by.get(tx.txid)
        return {
            **tx.to_json(),
            "txid": tx.txid,
            "status": "confirmed",
            "block_hash": block.hash,
            "height": block.height,
            "confirmations": self.blocks[-1].height - block.height + 1,
            "revoked": revoker is not None,
            "revoked_by": revoker,
        }

    def proof(self, txid: str) -> httpx.Response:
        if txid not in self.located():
            return httpx.Response(404, json={"error": {"code": "not-found", "message": txid}})
        block, index = self.located()[txid]
        leaves = block.leaves()
        body = {
            "txid": txid,
            "block_hash": block.hash,
            "height": block.height,
            "index": index,
            "tree_size": len(leaves),
            "leaf": leaves[index].hex(),
            "audit_path": [node.hex() for node in inclusion_proof(leaves, index)],
            "header": block.header.raw.hex(),
            "confirmations": self.blocks[-1].height - block.height + 1,
        }
        if self.patch_proof is not None:
            body = self.patch_proof(body)
        return httpx.Response(200, json=body)


def network(**nodes: FakeNode) -> httpx.MockTransport:
    """One transport for several fake nodes, told apart by host: ``http://<name>``."""

    def route(request: httpx.Request) -> httpx.Response:
        fake = nodes.get(request.url.host)
        if fake is None:
            raise httpx.ConnectError("connection refused", request=request)
        return fake.handle(request)

    return httpx.MockTransport(route)


def check(digest: str, confirmations: int = 1, **nodes: FakeNode) -> VerifyReport:
    urls = [f"http://{name}" for name in nodes]
    return verify_artifact(digest, urls, confirmations, transport=network(**nodes), clock_ms=clock)


# ---------------------------------------------------------------------- verifier


def test_registered_artifact_verifies() -> None:
    tx = dataset_tx()
    blocks = chain_of([dataset_tx(OTHER_DIGEST), tx], [])
    report = check(DIGEST, 2, a=FakeNode(blocks))
    assert report.ok, report.failures()
    assert report.best_height == 2 and report.best_hash == blocks[-1].hash
    (record,) = report.records
    assert (record.txid, record.kind, record.name) == (tx.txid, "dataset", "reviews")
    assert record.signer == public_key_hex(ALICE)
    assert (record.height, record.block_hash) == (1, blocks[1].hash)
    assert record.timestamp == blocks[1].header.timestamp
    assert record.confirmations == 2
    assert record.work_on_top == 2 * WORK
    assert record.fields == ["digest"]
    assert not record.revoked
    assert report.to_json()["ok"] is True


def test_every_record_across_pages_and_nodes_is_verified() -> None:
    txs = [dataset_tx(name=f"copy {i}") for i in range(5)]
    blocks = chain_of(txs[:3], txs[3:])
    report = check(DIGEST, a=FakeNode(blocks, page_size=2), b=FakeNode(blocks, page_size=3))
    assert report.ok, report.failures()
    assert sorted(r.txid for r in report.records) == sorted(tx.txid for tx in txs)


def test_unknown_digest_does_not_verify() -> None:
    report = check(OTHER_DIGEST, a=FakeNode(chain_of([dataset_tx()])))
    assert not report.ok
    assert report.records == []
    assert any("no record" in reason for reason in report.reasons)


def test_tampered_leaf_is_caught() -> None:
    tx = dataset_tx()
    blocks = chain_of([tx])
    forged = json.loads(tx.leaf_bytes)
    forged["payload"]["name"] = "something else"

    def lie(proof: dict[str, Any]) -> dict[str, Any]:
        return {**proof, "leaf": json.dumps(forged, separators=(",", ":")).encode().hex()}

    report = check(DIGEST, a=FakeNode(blocks, patch_proof=lie))
    assert not report.ok
    assert not report.records[0].verified
    assert any("not " + tx.txid in note for note in report.records[0].notes)


def test_another_transactions_leaf_is_caught() -> None:
    tx, other = dataset_tx(), dataset_tx(OTHER_DIGEST)
    blocks = chain_of([tx, other])

    def lie(proof: dict[str, Any]) -> dict[str, Any]:
        return {**proof, "leaf": other.leaf_bytes.hex(), "index": 1}

    assert not check(DIGEST, a=FakeNode(blocks, patch_proof=lie)).ok


def test_wrong_audit_path_is_caught() -> None:
    tx = dataset_tx()
    blocks = chain_of([tx, dataset_tx(OTHER_DIGEST), dataset_tx(OTHER_DIGEST)])

    def lie(proof: dict[str, Any]) -> dict[str, Any]:
        path = list(proof["audit_path"])
        path[0] = ("00" if path[0][:2] != "00" else "11") + path[0][2:]
        return {**proof, "audit_path": path}

    report = check(DIGEST, a=FakeNode(blocks, patch_proof=lie))
    assert not report.ok
    assert any("audit path" in note for note in report.records[0].notes)


def test_proof_against_a_header_off_the_chain_is_caught() -> None:
    tx = dataset_tx()
    blocks = chain_of([tx])
    unlinked = mine(blocks[0].header, [tx], prev_hash="11" * 32)

    def lie(proof: dict[str, Any]) -> dict[str, Any]:
        return {**proof, "header": unlinked.header.raw.hex(), "block_hash": unlinked.hash}

    report = check(DIGEST, a=FakeNode(blocks, patch_proof=lie))
    assert not report.ok
    assert any("not on the most-work chain" in n for n in report.records[0].notes)


def test_header_with_bad_pow_rejects_the_nodes_chain() -> None:
    blocks = chain_of([dataset_tx()], [])
    headers = [b.header.raw.hex() for b in blocks]
    headers[2] = failing_pow(blocks[2].header).raw.hex()
    report = check(DIGEST, a=FakeNode(blocks, headers_hex=headers))
    assert not report.ok
    assert "high-hash" in (report.nodes[0].error or "")
    assert report.reasons == ["no node served a valid header chain"]


def test_bits_above_the_pow_limit_are_rejected() -> None:
    blocks = chain_of([dataset_tx()])
    easy = replace(blocks[1].header, bits=0x2100FFFF)
    headers = [blocks[0].header.raw.hex(), easy.raw.hex()]
    report = check(DIGEST, a=FakeNode(blocks, headers_hex=headers))
    assert not report.ok
    assert "bad-diffbits" in (report.nodes[0].error or "")


def test_chain_that_does_not_link_is_rejected() -> None:
    blocks = chain_of([dataset_tx()])
    stray = mine(blocks[1].header, prev_hash="22" * 32)
    headers = [b.header.raw.hex() for b in blocks] + [stray.header.raw.hex()]
    report = check(DIGEST, a=FakeNode(blocks, headers_hex=headers))
    assert not report.ok
    assert "does not link" in (report.nodes[0].error or "")


def test_wrong_genesis_is_rejected() -> None:
    blocks = chain_of([dataset_tx()])
    fake_genesis = replace(blocks[0].header, timestamp=blocks[0].header.timestamp + 1)
    headers = [fake_genesis.raw.hex()] + [b.header.raw.hex() for b in blocks[1:]]
    report = check(DIGEST, a=FakeNode(blocks, headers_hex=headers))
    assert not report.ok
    assert "genesis" in (report.nodes[0].error or "")


def test_record_with_a_bad_signature_is_caught() -> None:
    honest = dataset_tx()
    forged_obj = {**honest.to_json(), "signer": public_key_hex(MALLORY)}
    forged = Transaction.from_json(forged_obj)  # parses: signatures are checked apart
    with pytest.raises(InvalidTx):
        verify_signature(forged)
    blocks = chain_of([forged])
    report = check(DIGEST, a=FakeNode(blocks))
    assert not report.ok
    assert any("bad-signature" in note for note in report.records[0].notes)


def test_insufficient_confirmations_fail() -> None:
    blocks = chain_of([], [dataset_tx()], [])
    report = check(DIGEST, 3, a=FakeNode(blocks))
    assert not report.ok
    (record,) = report.records
    assert record.verified and record.confirmations == 2
    assert record.reasons == ["2 confirmation(s), 3 required"]
    assert check(DIGEST, 2, a=FakeNode(blocks)).ok


def test_most_work_chain_wins_over_a_shorter_one() -> None:
    tx = dataset_tx()
    short = chain_of([tx])
    long = chain_of([], [tx], [], [])
    report = check(DIGEST, short=FakeNode(short), long=FakeNode(long))
    assert report.ok, report.failures()
    assert report.best_node == "http://long" and report.best_height == 4
    (record,) = report.records
    assert (record.height, record.confirmations, record.proof_from) == (2, 3, "http://long")


def test_record_only_on_a_low_work_fork_does_not_verify() -> None:
    tx = dataset_tx()
    report = check(DIGEST, short=FakeNode(chain_of([tx])), long=FakeNode(chain_of([], [], [])))
    assert not report.ok
    assert report.best_node == "http://long"
    assert any("not on the most-work chain" in n for n in report.records[0].notes)


def test_a_lying_node_does_not_spoil_an_honest_one() -> None:
    tx = dataset_tx()
    blocks = chain_of([tx], [])
    headers = [b.header.raw.hex() for b in blocks]
    headers[1] = failing_pow(blocks[1].header).raw.hex()

    def lie(proof: dict[str, Any]) -> dict[str, Any]:
        return {**proof, "audit_path": ["00" * 32]}

    liar = FakeNode(blocks, headers_hex=headers, patch_proof=lie)
    report = check(DIGEST, liar=liar, honest=FakeNode(blocks))
    assert report.ok, report.failures()
    assert not report.nodes[0].ok and report.nodes[1].ok


def test_revoked_record_is_reported_and_fails() -> None:
    tx = dataset_tx()
    revocation = revocation_tx(tx.txid)
    blocks = chain_of([tx], [revocation])
    report = check(DIGEST, a=FakeNode(blocks, revoked_by={tx.txid: revocation.txid}))
    assert not report.ok
    (record,) = report.records
    assert record.verified and record.revoked
    assert record.revoked_by == revocation.txid
    assert record.revocation_reason == "leaked PII"
    assert record.reasons == [f"revoked by {revocation.txid}: leaked PII"]


def test_unproven_revocation_claim_is_not_believed() -> None:
    tx = dataset_tx()
    by_mallory = revocation_tx(tx.txid, key=MALLORY)
    blocks = chain_of([tx, by_mallory])
    claims = {tx.txid: by_mallory.txid}
    report = check(DIGEST, a=FakeNode(blocks, revoked_by=claims))
    assert report.ok, report.failures()
    assert any("signed by another key" in n for n in report.records[0].notes)
    bogus = FakeNode(chain_of([tx]), revoked_by={tx.txid: "ee" * 32})
    assert check(DIGEST, a=bogus).ok


def test_record_not_mentioning_the_digest_fails() -> None:
    tx = dataset_tx(OTHER_DIGEST)
    blocks = chain_of([tx])
    fake = FakeNode(blocks, extra_records=[{"txid": tx.txid, "kind": "dataset"}])
    report = check(DIGEST, a=fake)
    assert not report.ok
    assert report.records[0].reasons == [f"the record does not mention {DIGEST}"]


def test_node_on_another_network_is_not_used() -> None:
    blocks = chain_of([dataset_tx()])
    liar = FakeNode(blocks, network="devnet")  # named first: still outvoted
    report = check(DIGEST, a=liar, b=FakeNode(blocks), c=FakeNode(blocks))
    assert report.ok
    assert report.network == "regtest"
    assert "genesis" in (report.nodes[0].error or "")
    asked = verify_artifact(
        DIGEST, ["http://a"], transport=network(a=FakeNode(blocks)), network="devnet"
    )
    assert not asked.ok
    assert asked.nodes[0].error == "on network regtest, not devnet"


def test_unreachable_nodes() -> None:
    blocks = chain_of([dataset_tx()])
    report = verify_artifact(
        DIGEST, ["http://down", "http://a"], transport=network(a=FakeNode(blocks)), clock_ms=clock
    )
    assert report.ok
    assert not report.nodes[0].reachable
    with pytest.raises(NodeUnavailable):
        verify_artifact(DIGEST, ["http://down"], transport=network(), clock_ms=clock)


# ---------------------------------------------------------------------- client


def api_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def test_api_errors_are_parsed() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/records/x":
            return httpx.Response(502, text="<html>bad gateway</html>")
        return api_error(404, "not-found", "no transaction")

    with Client("http://n", transport=httpx.MockTransport(reply)) as client:
        with pytest.raises(ApiError) as caught:
            client.transaction("ab" * 32)
        assert (caught.value.status, caught.value.code) == (404, "not-found")
        assert caught.value.message == "no transaction"
        with pytest.raises(ApiError) as caught:
            client.record("x")
        assert (caught.value.status, caught.value.code) == (502, "http-502")


def test_connection_failures_become_node_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = Client("http://n", transport=httpx.MockTransport(refuse))
    with client, pytest.raises(NodeUnavailable) as caught:
        client.status()
    assert isinstance(caught.value.__cause__, httpx.ConnectTimeout)
    assert caught.value.code == "node-unavailable"


def test_path_segments_are_quoted_and_admin_token_only_for_admin() -> None:
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"hashes": ["h"]})

    with Client("http://n/", admin_token="s3cret", transport=httpx.MockTransport(reply)) as c:
        c.record("../admin/mine")
        assert c.mine(2) == ["h"]
    assert seen[0].url.raw_path == b"/v1/records/..%2Fadmin%2Fmine"
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer s3cret"
    assert json.loads(seen[1].content) == {"blocks": 2}


def test_a_client_passed_in_is_not_closed() -> None:
    http = httpx.Client(
        base_url="http://n",
        transport=httpx.MockTransport(lambda r: api_error(503, "shutting-down", "bye")),
    )
    with Client("http://n", http=http) as client, pytest.raises(ApiError) as caught:
        client.status()
    assert (caught.value.status, caught.value.code) == (503, "shutting-down")
    assert not http.is_closed
    http.close()


def test_records_all_follows_cursors() -> None:
    blocks = chain_of([dataset_tx(name=f"n{i}") for i in range(5)])
    fake = FakeNode(blocks, page_size=2)
    with Client("http://a", transport=network(a=fake)) as client:
        names = [r["payload"]["name"] for r in client.records_all(digest=DIGEST)]
    assert sorted(names) == [f"n{i}" for i in range(5)]
    assert len([r for r in fake.requests if r.url.path == "/v1/records"]) == 3


def submitting_node(received: list[Transaction]) -> httpx.MockTransport:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/status":
            return httpx.Response(200, json={"network": "regtest"})
        tx = Transaction.from_json(json.loads(request.content))
        verify_signature(tx)
        received.append(tx)
        return httpx.Response(202, json={"txid": tx.txid, "status": "pending"})

    return httpx.MockTransport(reply)


def test_register_dataset_signs_and_submits(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_bytes(b"world!")
    received: list[Transaction] = []
    with Client("http://n", transport=submitting_node(received)) as client:
        txid = client.register_dataset(
            tmp_path, key=ALICE, name="greetings", license="MIT", derived_from=["ab" * 32]
        )
    (tx,) = received
    assert tx.txid == txid and tx.network == "regtest" and tx.kind == "dataset"
    assert tx.signer == public_key_hex(ALICE)
    assert tx.payload["digest"] == digest_path(tmp_path)
    assert tx.payload["size"] == 11
    assert tx.payload["derived_from"] == ["ab" * 32]
    assert tx.payload["metadata"]["artifact"]["files"] == 2
    assert "uri" not in tx.payload  # absent, never null


def test_register_model_and_other_records(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    received: list[Transaction] = []
    with Client("http://n", transport=submitting_node(received)) as client:
        client.register_model(
            model,
            key=ALICE,
            name="sentiment",
            inputs=[("ab" * 32, "training_data")],
            metrics={"accuracy": 0.91},
            hyperparameters={"lr": 0.001},
        )
        client.record_inference("cd" * 32, DIGEST, OTHER_DIGEST, key=ALICE)
        client.attest("cd" * 32, "evaluation", {}, key=ALICE)
        client.revoke("cd" * 32, key=ALICE)
    kinds = [tx.kind for tx in received]
    assert kinds == ["model", "inference", "attestation", "revocation"]
    assert received[0].payload["inputs"] == [{"ref": "ab" * 32, "role": "training_data"}]
    assert received[0].payload["digest"] == digest_path(model)
    assert "metadata" not in received[0].payload
    assert received[3].payload == {"subject": "cd" * 32}
    assert received[2].payload == {"subject": "cd" * 32, "type": "evaluation", "result": {}}
    assert len({tx.nonce for tx in received}) == 4


def test_new_nonces_are_unique_and_below_2_pow_53() -> None:
    nonces = [new_nonce() for _ in range(1000)]
    assert len(set(nonces)) == 1000
    assert nonces == sorted(nonces)
    assert all(0 <= n < 2**53 for n in nonces)


# ---------------------------------------------------------------------- command line

runner = CliRunner()


def test_keygen_writes_a_private_key_with_mode_0600(tmp_path: Path) -> None:
    out = tmp_path / "me.pem"
    result = runner.invoke(cli.app, ["keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    key = private_key_from_pem(out.read_bytes())
    assert result.stdout.strip() == public_key_hex(key)


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "me.pem"
    out.write_bytes(b"precious")
    out.chmod(0o644)
    result = runner.invoke(cli.app, ["keygen", "--out", str(out)])
    assert result.exit_code == 2
    assert "exists" in result.stderr and "Traceback" not in result.output
    assert out.read_bytes() == b"precious"
    result = runner.invoke(cli.app, ["keygen", "--out", str(out), "--force"])
    assert result.exit_code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    private_key_from_pem(out.read_bytes())
    assert [p.name for p in tmp_path.iterdir()] == ["me.pem"]


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "x"],  # no --node
        ["verify", "x", "--node", "http://n", "--confirmations", "0"],
        ["register", "dataset", "x"],  # no --name, no --key
        ["lineage", "ab", "--direction", "sideways"],
        ["bogus"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_missing_file_and_bad_key_are_one_line_errors(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_bytes(b"not a key")
    result = runner.invoke(
        cli.app, ["register", "dataset", str(tmp_path), "--name", "n", "--key", str(key)]
    )
    assert result.exit_code == 2
    assert "cannot load key" in result.stderr
    result = runner.invoke(cli.app, ["verify", str(tmp_path / "nope"), "--node", "http://n"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no such file" in result.stderr


def test_cli_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = tmp_path / "data.csv"
    artifact.write_bytes(b"a,b\n1,2\n")
    digest = digest_path(artifact)
    fake = FakeNode(chain_of([dataset_tx(digest)], []))
    transport = network(a=fake)

    def patched(*args: Any, **kwargs: Any) -> VerifyReport:
        return verify_artifact(*args, **{**kwargs, "transport": transport, "clock_ms": clock})

    monkeypatch.setattr(cli, "verify_artifact", patched)
    ok = runner.invoke(cli.app, ["verify", str(artifact), "--node", "http://a"])
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.stdout
    deep = ["verify", str(artifact), "--node", "http://a", "--confirmations", "5"]
    failed = runner.invoke(cli.app, deep)
    assert failed.exit_code == 1
    assert "2 confirmation(s), 5 required" in failed.stderr
    down = runner.invoke(cli.app, ["verify", str(artifact), "--node", "http://down"])
    assert down.exit_code == 2
    assert "cannot reach" in down.stderr and "Traceback" not in down.output
    as_json = runner.invoke(cli.app, ["verify", DIGEST, "--node", "http://a", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["ok"] is False


def test_cli_api_error_is_code_and_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return api_error(404, "not-found", "no confirmed record")

    real_client = cli.Client

    def fake_client(url: str, **kwargs: Any) -> Client:
        return real_client(url, transport=httpx.MockTransport(reply))

    monkeypatch.setattr(cli, "Client", fake_client)
    result = runner.invoke(cli.app, ["lineage", "ab" * 32, "--node", "http://n"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: not-found: no confirmed record"


def test_node_command_builds_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import node.server

    started: list[Any] = []
    monkeypatch.setattr(node.server, "run", started.append)
    monkeypatch.setenv("AILEDGER_PORT", "9001")
    args = ["node", "--network", "regtest", "--data-dir", str(tmp_path), "--mine"]
    args += ["--peer", "http://a:1", "--peer", "http://b:2,http://c:3", "--log-level", "DEBUG"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    (settings,) = started
    assert (settings.network, settings.port, settings.mine) == ("regtest", 9001, True)
    assert settings.peers == ["http://a:1", "http://b:2", "http://c:3"]
    assert settings.data_dir == tmp_path and settings.log_level == "debug"
    bad = runner.invoke(cli.app, ["node", "--network", "mainnet"])
    assert bad.exit_code == 2
    assert "bad setting network" in bad.stderr and "Traceback" not in bad.output
    assert len(started) == 1
