"""Prometheus metrics of one node, on a registry of its own (tests run several nodes)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.height = Gauge("ailedger_height", "Height of the active chain tip", registry=r)
        self.peers = Gauge("ailedger_peers", "Connected peers", registry=r)
        self.mempool_txs = Gauge(
            "ailedger_mempool_transactions", "Pending transactions", registry=r
        )
        self.mempool_bytes = Gauge(
            "ailedger_mempool_bytes", "Pending transaction bytes", registry=r
        )
        self.hash_rate = Gauge("ailedger_miner_hashes_per_second", "Miner hash rate", registry=r)
        self.blocks_connected = Counter("ailedger_blocks_connected", "Blocks connected", registry=r)
        self.reorgs = Counter("ailedger_reorgs", "Reorganisations of the active chain", registry=r)
        self.txs_accepted = Counter(
            "ailedger_transactions_accepted", "Transactions accepted into the mempool", registry=r
        )
        self.txs_rejected = Counter(
            "ailedger_transactions_rejected",
            "Transactions rejected, by reject code",
            ["code"],
            registry=r,
        )
        self.blocks_rejected = Counter(
            "ailedger_blocks_rejected", "Blocks rejected, by code", ["code"], registry=r
        )
        self.block_process_seconds = Histogram(
            "ailedger_block_process_seconds",
            "Time to check, store and connect one submission: a block, or a synced run"
            " (whose time includes its wait to share a fuller commit)",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
