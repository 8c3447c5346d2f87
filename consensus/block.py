"""Block headers (the normative 128-byte layout) and blocks (header + transactions).

    offset size field
         0    4 version      u32, = 1
         4    8 height       u64, genesis = 0
        12   32 prev_hash    raw; zeros for genesis
        44   32 merkle_root  raw
        76    8 timestamp    u64, ms since the Unix epoch
        84    4 bits         u32, compact target (Bitcoin's nBits)
        88   32 miner        raw Ed25519 public key, or zeros
       120    8 nonce        u64, < 2**53

All integers are big-endian. The block hash is SHA-256 of these bytes, shown as lowercase
hex of the raw digest (no byte reversal, unlike Bitcoin). The nonce is last so a miner
can hash the first 120 bytes once (the midstate) and vary only the final 8.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from consensus.errors import InvalidBlock, InvalidTx
from consensus.tx import Transaction

__all__ = ["HEADER_SIZE", "PREFIX_SIZE", "ZERO_HASH", "Block", "Header"]

HEADER_SIZE = 128
PREFIX_SIZE = 120
ZERO_HASH = "00" * 32
_PREFIX = struct.Struct(">IQ32s32sQI32s")
_U64 = 2**64
_U32 = 2**32
_NONCE_LIMIT = 2**53
_HEX32_CHARS = frozenset("0123456789abcdef")


def _raw32(value: str, name: str) -> bytes:
    if len(value) != 64 or not set(value) <= _HEX32_CHARS:
        raise InvalidBlock("bad-header", f"{name} must be 64 lowercase hex characters")
    return bytes.fromhex(value)


@dataclass(frozen=True)
class Header:
    version: int
    height: int
    prev_hash: str
    merkle_root: str
    timestamp: int
    bits: int
    miner: str
    nonce: int

    def __post_init__(self) -> None:
        for name, limit in (
            ("version", _U32),
            ("bits", _U32),
            ("height", _U64),
            ("timestamp", _U64),
            ("nonce", _NONCE_LIMIT),
        ):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value < limit:
                raise InvalidBlock("bad-header", f"{name} must be an integer in [0, {limit})")

    def prefix(self) -> bytes:
        """The first 120 bytes: everything but the nonce (what the miner's midstate covers)."""
        return _PREFIX.pack(
            self.version,
            self.height,
            _raw32(self.prev_hash, "prev_hash"),
            _raw32(self.merkle_root, "merkle_root"),
            self.timestamp,
            self.bits,
            _raw32(self.miner, "miner"),
        )

    @cached_property
    def raw(self) -> bytes:
        return self.prefix() + self.nonce.to_bytes(8, "big")

    @cached_property
    def hash(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """The header of these 128 bytes. The struct's field widths already hold version,
        bits, height and timestamp to their ranges, so only the nonce is checked, and
        ``__post_init__`` is skipped: a synced run decodes thousands of headers."""
        if len(data) != HEADER_SIZE:
            raise InvalidBlock("bad-header", f"a header is {HEADER_SIZE} bytes, got {len(data)}")
        version, height, prev, root, timestamp, bits, miner = _PREFIX.unpack_from(data)
        nonce = int.from_bytes(data[PREFIX_SIZE:], "big")
        if nonce >= _NONCE_LIMIT:
            raise InvalidBlock("bad-header", f"nonce must be an integer in [0, {_NONCE_LIMIT})")
        header = object.__new__(cls)
        header.__dict__.update(
            version=version,
            height=height,
            prev_hash=prev.hex(),
            merkle_root=root.hex(),
            timestamp=timestamp,
            bits=bits,
            miner=miner.hex(),
            nonce=nonce,
            raw=bytes(data),  # the bytes it came from: no need to re-pack
        )
        return header

    @classmethod
    def from_hex(cls, text: str) -> Header:
        try:
            data = bytes.fromhex(text)
        except (ValueError, TypeError) as exc:
            raise InvalidBlock("bad-header", "header is not hex") from exc
        return cls.decode(data)

    def with_nonce(self, nonce: int) -> Header:
        return replace(self, nonce=nonce)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "height": self.height,
            "prev_hash": self.prev_hash,
            "merkle_root": self.merkle_root,
            "timestamp": self.timestamp,
            "bits": self.bits,
            "miner": self.miner,
            "nonce": self.nonce,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Header:
        keys = (
            "version",
            "height",
            "prev_hash",
            "merkle_root",
            "timestamp",
            "bits",
            "miner",
            "nonce",
        )
        if not isinstance(obj, dict) or set(obj) != set(keys):
            raise InvalidBlock("bad-header", f"a header is an object with exactly {keys}")
        for key in ("prev_hash", "merkle_root", "miner"):
            if not isinstance(obj[key], str):
                raise InvalidBlock("bad-header", f"{key} must be a hex string")
        header = cls(**{k: obj[k] for k in keys})
        header.prefix()  # checks the hex fields
        return header


@dataclass(frozen=True)
class Block:
    header: Header
    transactions: tuple[Transaction, ...] = field(default=())

    @property
    def hash(self) -> str:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def leaves(self) -> list[bytes]:
        return [tx.leaf_bytes for tx in self.transactions]

    def to_json(self, *, with_header_hex: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hash": self.hash,
            "header": self.header.to_json(),
            "transactions": [tx.to_json() for tx in self.transactions],
        }
        if with_header_hex:
            out["header_hex"] = self.header.raw.hex()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Block:
        """Parse the JSON form; ``hash`` and ``header_hex``, if present, must agree."""
        if not isinstance(obj, dict) or "header" not in obj or "transactions" not in obj:
            raise InvalidBlock("bad-block", "a block is an object with header and transactions")
        extra = set(obj) - {"hash", "header", "transactions", "header_hex"}
        if extra:
            raise InvalidBlock("bad-block", f"unknown block fields: {sorted(extra)}")
        header = Header.from_json(obj["header"])
        if "hash" in obj and obj["hash"] != header.hash:
            raise InvalidBlock("bad-block", "hash does not match the header")
        if "header_hex" in obj and obj["header_hex"] != header.raw.hex():
            raise InvalidBlock("bad-block", "header_hex does not match the header")
        txs = obj["transactions"]
        if not isinstance(txs, list):
            raise InvalidBlock("bad-block", "transactions must be a list")
        return cls(header=header, transactions=tuple(_parse_tx(tx) for tx in txs))


def _parse_tx(obj: Any) -> Transaction:
    try:
        return Transaction.from_json(obj)
    except InvalidTx as exc:
        raise InvalidBlock(exc.code, f"transaction: {exc.message}", txid=exc.txid) from exc
