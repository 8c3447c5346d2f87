"""Ledger rules (design section 2): uniqueness, references, revocations, and overlays."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.errors import InvalidTx
from consensus.ledger import (
    ALLOWED_REFERENCE_KINDS,
    LedgerView,
    MemoryLedger,
    Overlay,
    RecordInfo,
    check_tx_ledger,
)
from consensus.payloads import KINDS, ROLES
from consensus.tx import Transaction
from tests.consensus.conftest import (
    ALICE,
    ALICE_HEX,
    BOB,
    attestation_payload,
    dataset_payload,
    inference_payload,
    make_tx,
    model_payload,
    revocation_payload,
)
from tests.helpers.ledger import apply_block_txs

MISSING = "ab" * 32


def rejected(view: LedgerView, tx: Transaction, code: str) -> InvalidTx:
    with pytest.raises(InvalidTx) as info:
        check_tx_ledger(view, tx)
    assert (info.value.code, info.value.txid) == (code, tx.txid), info.value
    return info.value


def record_of(kind: str, ledger: MemoryLedger, name: str = "r") -> Transaction:
    """A recorded transaction of ``kind`` (with whatever it references recorded too)."""
    if kind == "dataset":
        tx = make_tx(ALICE, "dataset", dataset_payload(name))
    elif kind == "model":
        tx = make_tx(ALICE, "model", model_payload(name))
    elif kind == "inference":
        tx = make_tx(ALICE, "inference", inference_payload(record_of("model", ledger).txid, name))
    elif kind == "attestation":
        tx = make_tx(ALICE, "attestation", attestation_payload(record_of("dataset", ledger).txid))
    else:
        tx = make_tx(ALICE, "revocation", revocation_payload(record_of("dataset", ledger).txid))
    ledger.apply(tx)
    return tx


def referencing(kind: str, ref: str, key: Any = ALICE) -> Transaction:
    """A transaction of ``kind`` whose (first) reference is ``ref``."""
    payload = {
        "dataset": dataset_payload(derived_from=[ref]),
        "model": model_payload(inputs=[(ref, "training_data")]),
        "inference": inference_payload(ref),
        "attestation": attestation_payload(ref),
        "revocation": revocation_payload(ref),
    }[kind]
    return make_tx(key, kind, payload)


def test_record_info_is_small_and_frozen() -> None:
    info = RecordInfo("dataset", ALICE_HEX)
    assert (info.kind, info.signer) == ("dataset", ALICE_HEX)
    with pytest.raises(AttributeError):
        info.kind = "model"  # type: ignore[misc]


def test_a_new_transaction_without_references_is_accepted(ledger: MemoryLedger) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload())
    check_tx_ledger(ledger, tx)
    ledger.apply(tx)
    assert ledger.record(tx.txid) == RecordInfo("dataset", ALICE_HEX)
    assert ledger.nonce_used(ALICE_HEX, tx.nonce)
    assert not ledger.is_revoked(tx.txid)


def test_duplicate(ledger: MemoryLedger) -> None:
    tx = make_tx(ALICE, "dataset", dataset_payload())
    ledger.apply(tx)
    rejected(ledger, tx, "duplicate")


def test_duplicate_nonce_is_per_signer(ledger: MemoryLedger) -> None:
    ledger.apply(make_tx(ALICE, "dataset", dataset_payload("a"), nonce=5))
    rejected(ledger, make_tx(ALICE, "dataset", dataset_payload("b"), nonce=5), "duplicate-nonce")
    ledger.apply(make_tx(BOB, "dataset", dataset_payload("b"), nonce=5))
    ledger.apply(make_tx(ALICE, "dataset", dataset_payload("b"), nonce=6))


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_reference(ledger: MemoryLedger, kind: str) -> None:
    message = rejected(ledger, referencing(kind, MISSING), "unknown-reference").message
    assert MISSING in message


def test_every_reference_must_exist(ledger: MemoryLedger) -> None:
    known = record_of("dataset", ledger).txid
    model = make_tx(
        ALICE, "model", model_payload(inputs=[(known, "training_data"), (MISSING, "test_data")])
    )
    assert "test_data reference" in rejected(ledger, model, "unknown-reference").message
    dataset = make_tx(ALICE, "dataset", dataset_payload(derived_from=[known, MISSING]))
    rejected(ledger, dataset, "unknown-reference")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", KINDS)
def test_reference_kinds(ledger: MemoryLedger, kind: str, target: str) -> None:
    """The full table: which kind may reference which."""
    subject = record_of(target, ledger)
    tx = referencing(kind, subject.txid)
    if target in ALLOWED_REFERENCE_KINDS[kind]:
        ledger.apply(tx)
    else:
        rejected(ledger, tx, "bad-reference-kind")


def test_reference_table_matches_the_design() -> None:
    table = {
        "dataset": {"dataset"},
        "model": {"dataset", "model"},
        "inference": {"model"},
        "attestation": set(KINDS),
        "revocation": set(KINDS) - {"revocation"},
    }
    assert table == ALLOWED_REFERENCE_KINDS


@pytest.mark.parametrize("role", ROLES)
def test_model_inputs_of_every_role_may_be_datasets_or_models(
    ledger: MemoryLedger, role: str
) -> None:
    data, base = record_of("dataset", ledger), record_of("model", ledger)
    ledger.apply(
        make_tx(ALICE, "model", model_payload(inputs=[(data.txid, role), (base.txid, role)]))
    )


def test_bad_reference_kind_messages(ledger: MemoryLedger) -> None:
    model = record_of("model", ledger)
    message = rejected(ledger, referencing("dataset", model.txid), "bad-reference-kind").message
    assert message == (
        f"derived_from reference {model.txid} is a model record; a dataset needs a dataset here"
    )
    inference = record_of("inference", ledger)
    message = rejected(ledger, referencing("model", inference.txid), "bad-reference-kind").message
    assert "is an inference record; a model needs a dataset or a model here" in message
    message = rejected(
        ledger, referencing("inference", record_of("dataset", ledger).txid), "bad-reference-kind"
    ).message
    assert "an inference needs a model here" in message


def test_revoking_a_revocation(ledger: MemoryLedger) -> None:
    revocation = record_of("revocation", ledger)
    message = rejected(
        ledger, referencing("revocation", revocation.txid), "bad-reference-kind"
    ).message
    assert message == "a revocation cannot be revoked"


def test_revocation_by_the_subject_signer(ledger: MemoryLedger) -> None:
    subject = record_of("model", ledger)
    revocation = make_tx(
        ALICE, "revocation", revocation_payload(subject.txid, reason="leaked test set")
    )
    ledger.apply(revocation)
    assert ledger.is_revoked(subject.txid)
    assert ledger.revoked == {subject.txid: revocation.txid}
    assert not ledger.is_revoked(revocation.txid)


def test_revocation_by_another_signer(ledger: MemoryLedger) -> None:
    subject = record_of("dataset", ledger)
    message = rejected(
        ledger, referencing("revocation", subject.txid, BOB), "not-subject-signer"
    ).message
    assert ALICE_HEX in message


def test_double_revocation(ledger: MemoryLedger) -> None:
    subject = record_of("dataset", ledger)
    ledger.apply(referencing("revocation", subject.txid))
    rejected(ledger, referencing("revocation", subject.txid), "already-revoked")
    # another signer is told that first: it could never revoke it anyway
    rejected(ledger, referencing("revocation", subject.txid, BOB), "not-subject-signer")


def test_revoked_records_may_still_be_referenced(ledger: MemoryLedger) -> None:
    model = record_of("model", ledger)
    ledger.apply(referencing("revocation", model.txid))
    ledger.apply(referencing("inference", model.txid))
    ledger.apply(referencing("attestation", model.txid))


# --- overlays: a block's (or the mempool's) transactions over the chain ------------------


def test_same_block_reference_to_an_earlier_transaction() -> None:
    base = MemoryLedger()
    data = make_tx(ALICE, "dataset", dataset_payload())
    model = make_tx(ALICE, "model", model_payload(inputs=[(data.txid, "training_data")]))
    overlay = apply_block_txs(base, [data, model])
    assert overlay.added == [data, model]
    assert overlay.record(model.txid) == RecordInfo("model", ALICE_HEX)


def test_same_block_reference_to_a_later_transaction_fails() -> None:
    data = make_tx(ALICE, "dataset", dataset_payload())
    model = make_tx(ALICE, "model", model_payload(inputs=[(data.txid, "training_data")]))
    with pytest.raises(InvalidTx) as info:
        apply_block_txs(MemoryLedger(), [model, data])
    assert (info.value.code, info.value.txid) == ("unknown-reference", model.txid)


def test_same_block_duplicates() -> None:
    data = make_tx(ALICE, "dataset", dataset_payload(), nonce=1)
    again = make_tx(ALICE, "dataset", dataset_payload("other"), nonce=1)
    with pytest.raises(InvalidTx) as info:
        apply_block_txs(MemoryLedger(), [data, data])
    assert info.value.code == "duplicate"
    with pytest.raises(InvalidTx) as info:
        apply_block_txs(MemoryLedger(), [data, again])
    assert (info.value.code, info.value.txid) == ("duplicate-nonce", again.txid)


def test_dependent_chain_in_one_overlay() -> None:
    """dataset -> derived dataset -> model -> inference -> attestation -> revocation."""
    base = MemoryLedger()
    raw = make_tx(ALICE, "dataset", dataset_payload("raw"))
    clean = make_tx(ALICE, "dataset", dataset_payload("clean", derived_from=[raw.txid]))
    model = make_tx(ALICE, "model", model_payload(inputs=[(clean.txid, "training_data")]))
    tuned = make_tx(ALICE, "model", model_payload("tuned", inputs=[(model.txid, "base_model")]))
    inference = make_tx(BOB, "inference", inference_payload(tuned.txid))
    attestation = make_tx(BOB, "attestation", attestation_payload(inference.txid))
    revocation = make_tx(ALICE, "revocation", revocation_payload(tuned.txid))
    chain = [raw, clean, model, tuned, inference, attestation, revocation]
    overlay = apply_block_txs(base, chain)
    assert overlay.added == chain
    assert overlay.is_revoked(tuned.txid)
    assert set(overlay.records) == {tx.txid for tx in chain}
    assert overlay.revoked == {tuned.txid: revocation.txid}
    assert overlay.nonces == {(tx.signer, tx.nonce) for tx in chain}


def test_overlay_does_not_change_its_base() -> None:
    base = MemoryLedger()
    subject = record_of("dataset", base)
    before = (dict(base.records), set(base.nonces), dict(base.revoked))
    overlay = Overlay(base)
    revocation = referencing("revocation", subject.txid)
    overlay.apply(revocation)
    overlay.apply(make_tx(ALICE, "dataset", dataset_payload("new")))
    assert (base.records, base.nonces, base.revoked) == before
    assert overlay.is_revoked(subject.txid) and not base.is_revoked(subject.txid)
    assert base.record(revocation.txid) is None


def test_overlay_sees_its_base() -> None:
    base = MemoryLedger()
    subject = record_of("dataset", base)
    revoked = record_of("model", base)
    base.apply(referencing("revocation", revoked.txid))
    overlay = Overlay(base)
    assert overlay.record(subject.txid) == RecordInfo("dataset", ALICE_HEX)
    assert overlay.record(MISSING) is None
    assert overlay.is_revoked(revoked.txid) and not overlay.is_revoked(subject.txid)
    rejected(overlay, referencing("revocation", revoked.txid), "already-revoked")
    rejected(
        overlay,
        make_tx(ALICE, "dataset", dataset_payload("x"), nonce=subject.nonce),
        "duplicate-nonce",
    )
    rejected(overlay, subject, "duplicate")
    assert overlay.added == []


def test_overlays_stack() -> None:
    """A block on top of a block: each overlay sees all below it."""
    base = MemoryLedger()
    first = apply_block_txs(base, [make_tx(ALICE, "dataset", dataset_payload("a"))])
    data = first.added[0]
    second = apply_block_txs(first, [referencing("model", data.txid)])
    assert second.record(data.txid) == RecordInfo("dataset", ALICE_HEX)
    assert len(second.added) == 1 and first.added == [data]


def test_remove_undoes_add() -> None:
    base = MemoryLedger()
    subject = record_of("dataset", base)
    overlay = Overlay(base)
    revocation = referencing("revocation", subject.txid)
    overlay.apply(revocation)
    overlay.remove(revocation)
    assert overlay.added == [] and not overlay.is_revoked(subject.txid)
    assert overlay.record(revocation.txid) is None
    assert not overlay.nonce_used(revocation.signer, revocation.nonce)
    overlay.remove(revocation)  # a second time: nothing left to undo
    overlay.apply(revocation)
    base.remove(subject)
    assert base.record(subject.txid) is None and not base.nonce_used(ALICE_HEX, subject.nonce)


def test_remove_keeps_a_later_revocation_of_the_same_subject() -> None:
    ledger = MemoryLedger()
    subject = record_of("dataset", ledger)
    first = referencing("revocation", subject.txid)
    ledger.apply(first)
    ledger.remove(first)
    second = referencing("revocation", subject.txid)
    ledger.apply(second)
    ledger.remove(first)  # not the recorded revocation: the subject stays revoked
    assert ledger.revoked == {subject.txid: second.txid}


def test_memory_ledger_from_transactions() -> None:
    data = make_tx(ALICE, "dataset", dataset_payload())
    revocation = referencing("revocation", data.txid)
    ledger = MemoryLedger([data, revocation])
    assert ledger.is_revoked(data.txid)
    assert ledger.record(revocation.txid) == RecordInfo("revocation", ALICE_HEX)


def test_add_records_without_checking() -> None:
    ledger = MemoryLedger()
    orphan = referencing("model", MISSING)
    ledger.add(orphan)
    assert ledger.record(orphan.txid) is not None
    with pytest.raises(InvalidTx):
        ledger.apply(orphan)


# --- property: layering is transparent -------------------------------------------------------

# A small pool of transactions with many ways to conflict: shared nonces, references in
# both directions, revocations by both keys, of both kinds of subject.
_D1 = make_tx(ALICE, "dataset", dataset_payload("d1"), nonce=1)
_D2 = make_tx(BOB, "dataset", dataset_payload("d2", derived_from=[_D1.txid]), nonce=1)
_M1 = make_tx(ALICE, "model", model_payload("m1", inputs=[(_D2.txid, "training_data")]), nonce=2)
_I1 = make_tx(BOB, "inference", inference_payload(_M1.txid), nonce=2)
_POOL = [
    _D1,
    _D2,
    _M1,
    _I1,
    make_tx(ALICE, "dataset", dataset_payload("d3"), nonce=1),
    make_tx(ALICE, "attestation", attestation_payload(_I1.txid), nonce=3),
    make_tx(ALICE, "revocation", revocation_payload(_D1.txid), nonce=4),
    make_tx(ALICE, "revocation", revocation_payload(_D1.txid), nonce=5),
    make_tx(BOB, "revocation", revocation_payload(_M1.txid), nonce=3),
    make_tx(ALICE, "revocation", revocation_payload(_M1.txid), nonce=6),
    make_tx(BOB, "revocation", revocation_payload(_D2.txid), nonce=4),
]


def _outcomes(view: MemoryLedger, txs: list[Transaction]) -> list[str]:
    results = []
    for tx in txs:
        try:
            view.apply(tx)
        except InvalidTx as exc:
            results.append(exc.code)
        else:
            results.append("ok")
    return results


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_POOL), max_size=12), st.integers(0, 12), st.integers(0, 12))
def test_overlays_agree_with_one_flat_ledger(txs: list[Transaction], cut: int, cut2: int) -> None:
    flat = _outcomes(MemoryLedger(), txs)
    cut, cut2 = sorted((min(cut, len(txs)), min(cut2, len(txs))))
    base = MemoryLedger()
    first = Overlay(base)
    second = Overlay(first)
    layered = (
        _outcomes(base, txs[:cut]) + _outcomes(first, txs[cut:cut2]) + _outcomes(second, txs[cut2:])
    )
    assert layered == flat
    results = list(zip(txs, flat, strict=True))
    assert first.added + second.added == [tx for tx, result in results[cut:] if result == "ok"]
