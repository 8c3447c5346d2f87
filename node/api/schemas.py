"""Pydantic models of the API's requests and answers, so /docs is a true description."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "AdminMineIn",
    "AdminMiningIn",
    "AdminNetworkIn",
    "AdminPeerIn",
    "BatchIn",
    "BatchOut",
    "BatchResult",
    "BlockSummary",
    "BlocksOut",
    "HeadersOut",
    "HealthOut",
    "LineageEdge",
    "LineageOut",
    "MempoolOut",
    "MempoolSummary",
    "MinedOut",
    "PeerOut",
    "PeersOut",
    "ProofOut",
    "RecordsOut",
    "StatusOut",
    "SubmitOut",
    "TipOut",
    "TipsOut",
    "TransactionIn",
]


class TransactionIn(BaseModel):
    """A signed record (design §2). Shown for documentation; the node parses the raw JSON."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    network: str
    kind: Literal["dataset", "model", "inference", "attestation", "revocation"]
    payload: dict[str, Any]
    signer: str = Field(pattern=r"^[0-9a-f]{64}$")
    nonce: int = Field(ge=0, lt=2**53)
    timestamp: int = Field(ge=0, lt=2**53)
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")


class BatchIn(BaseModel):
    transactions: list[TransactionIn] = Field(max_length=1000)


class HealthOut(BaseModel):
    status: Literal["ok"]


class MempoolSummary(BaseModel):
    count: int
    bytes: int


class StatusOut(BaseModel):
    network: str
    genesis_hash: str
    node_id: str
    version: str
    height: int
    best_hash: str
    chain_work: str
    bits: int
    mempool: MempoolSummary
    peers: int
    mining: bool
    syncing: bool
    network_active: bool


class BlockSummary(BaseModel):
    hash: str
    height: int
    prev_hash: str
    merkle_root: str
    timestamp: int
    bits: int
    miner: str
    nonce: int
    tx_count: int


class BlocksOut(BaseModel):
    blocks: list[BlockSummary]


class HeadersOut(BaseModel):
    headers: list[str]


class TipOut(BaseModel):
    hash: str
    height: int
    chain_work: str
    branch_len: int
    status: Literal["active", "valid-fork", "headers-only", "invalid", "valid-headers"]


class TipsOut(BaseModel):
    tips: list[TipOut]


class SubmitOut(BaseModel):
    txid: str
    status: Literal["pending"]


class BatchResult(BaseModel):
    txid: str
    status: Literal["accepted", "duplicate", "rejected"]
    error: dict[str, str] | None = None


class BatchOut(BaseModel):
    results: list[BatchResult]


class ProofOut(BaseModel):
    txid: str
    block_hash: str
    height: int
    index: int
    tree_size: int
    leaf: str
    audit_path: list[str]
    header: str
    confirmations: int


class RecordsOut(BaseModel):
    records: list[dict[str, Any]]
    next_cursor: str | None


class LineageEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    role: str


class LineageOut(BaseModel):
    root: str
    direction: Literal["ancestors", "descendants"]
    nodes: list[dict[str, Any]]
    edges: list[LineageEdge]


class MempoolOut(BaseModel):
    count: int
    bytes: int
    txids: list[str]


class PeerOut(BaseModel):
    url: str
    node_id: str | None
    direction: str
    height: int | None
    best_hash: str | None
    last_seen: int | None
    discouraged: bool
    reason: str | None


class PeersOut(BaseModel):
    peers: list[PeerOut]


def _whole(value: Any) -> Any:
    """A whole JSON number written with a fraction (``3.0``) is that integer."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class AdminMineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    blocks: Annotated[int, BeforeValidator(_whole)] = Field(1, ge=1, le=1000)


class MinedOut(BaseModel):
    hashes: list[str]


class AdminMiningIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: bool


class AdminPeerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(pattern=r"^https?://[^/]", description="another node's base URL")


class AdminNetworkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    active: bool
