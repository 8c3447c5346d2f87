"""The chain state: one path for every block, mined, pushed or synced.

``process_header`` accepts a header into the block tree after its context-free and
contextual checks. ``process_blocks`` adds the bodies, then ``activate_best_chain`` moves
the active chain to the most-work candidate: the whole switch (disconnect to the fork
point, connect the new branch, ledger rules checked block by block) happens inside one
storage transaction, so either all of it commits or nothing changes. A block that fails
is marked invalid with its descendants and the next-best candidate is tried.

Memory follows disk: when a write fails (``StoreError``: an I/O error, a full disk),
its transaction rolls back and the tree and active chain are read back from the store
before the error goes on, so the next block meets the state the disk holds. If even
that read fails, the chain state refuses every change from then on and tells the node
to stop (Bitcoin's FatalError); a restart reads everything back.

Runs on one thread (the node's chain worker); nothing here is async.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from consensus.block import Block, Header
from consensus.chain import ActiveChain, BlockTree, Entry, Status
from consensus.errors import BlockNotFound, BlockTooNew, InvalidBlock
from consensus.genesis import genesis_header
from consensus.ledger import Overlay
from consensus.params import ConsensusParams
from consensus.pow import bits_to_target, block_work, next_bits
from consensus.validation import (
    apply_block_ledger,
    check_block,
    check_header,
    contextual_check_header,
)
from node.store import Store, StoreError

__all__ = ["Activation", "BlockOutcome", "BlockResult", "ChainState", "HeaderRun", "Reorg"]

log = logging.getLogger(__name__)

# Failures of the body that do not condemn the header: the same header with the right
# transactions is still a valid block (a mutated block keeps its hash; CVE-2012-2459).
_MUTATION_CODES = frozenset(
    {"bad-merkle-root", "bad-txns-duplicate", "bad-blk-length", "bad-blk-size"}
)


class BlockOutcome(StrEnum):
    ACCEPTED = "accepted"
    """Stored; it is on the active chain or on a side branch (see ``BlockResult``)."""
    DUPLICATE = "duplicate"
    NEED_PARENTS = "need-parents"
    TOO_NEW = "too-new"
    REJECTED = "rejected"


@dataclass
class Reorg:
    """How the active chain moved: blocks disconnected (old tip first) and connected."""

    disconnected: list[Block] = field(default_factory=list)
    connected: list[Block] = field(default_factory=list)


@dataclass
class BlockResult:
    outcome: BlockOutcome
    hash: str
    code: str | None = None
    message: str | None = None
    reorg: Reorg = field(default_factory=Reorg)


@dataclass
class HeaderRun:
    """What ``process_headers`` did: the entries accepted (known ones included), in
    order, and why it stopped early, if it did."""

    accepted: list[Entry] = field(default_factory=list)
    failure: InvalidBlock | BlockTooNew | BlockNotFound | None = None


@dataclass
class Activation:
    """What ``activate_best_chain`` did: the switch, and the blocks found invalid."""

    reorg: Reorg = field(default_factory=Reorg)
    invalid: dict[str, InvalidBlock] = field(default_factory=dict)


FRESH_BLOCKS = 1024
"""Bodies kept in memory from their arrival until they connect: a synced run that
arrives before its parents connects later without being read back from disk (twice
``node.daemon.MAX_BLOCK_GROUP``, so a whole group's bodies are still here when it
connects)."""


def header_work(header: Header) -> int:
    return block_work(bits_to_target(header.bits))


class ChainState:
    def __init__(self, store: Store, params: ConsensusParams, clock: Callable[[], int]) -> None:
        self.store = store
        self.params = params
        self.clock = clock
        self.failure: str | None = None
        """Why the chain state stopped: storage failed and reloading from it failed too."""
        self.on_fatal: Callable[[str], None] | None = None
        """Called once with ``failure`` when it is set (the node stops)."""
        self._writing = 0
        self._load()

    def _load(self) -> None:
        """The tree and the active chain as the store holds them (memory follows disk)."""
        store = self.store
        genesis = genesis_header(self.params)
        columns, side = store.load_chain()
        try:
            self.tree = BlockTree.from_chain(genesis, header_work(genesis), columns)
        except ValueError as exc:
            raise RuntimeError(f"the stored active chain does not load: {exc}") from exc
        self._load_side(side)
        tip_hash, _ = store.tip()
        tip = self.tree.get(tip_hash)
        if tip is None:
            raise RuntimeError(f"store tip {tip_hash} is not in the header tree")
        self.active = ActiveChain(tip)
        self._fresh: dict[str, Block] = {}

    @contextmanager
    def _writes(self) -> Iterator[None]:
        """Around every change: when storage fails, its transaction rolled back, so the
        tree and the active chain are read back from the store before the ``StoreError``
        goes on (the outermost call does it, after the rollback). When even that fails,
        the chain state is unusable: ``failure`` says why and ``on_fatal`` hears it."""
        if self.failure is not None:
            raise StoreError(self.failure)
        self._writing += 1
        try:
            yield
        except StoreError as exc:
            if self._writing == 1:
                self._recover(exc)
            raise
        finally:
            self._writing -= 1

    def _recover(self, exc: StoreError) -> None:
        log.error("storage failed, the chain state is read back from disk: %s", exc)
        try:
            self._load()
        except (StoreError, RuntimeError) as reload_exc:
            self.failure = (
                f"storage failed ({exc}) and the chain state could not be read back"
                f" ({reload_exc}): restart the node once the storage works"
            )
            log.critical("%s", self.failure)
            if self.on_fatal is not None:
                self.on_fatal(self.failure)
            raise StoreError(self.failure) from reload_exc

    def _load_side(self, side: list[tuple[Header, int, str, int | None]]) -> None:
        """Add the stored headers off the active chain, without re-validating.

        Headers go in by height; bodies are then marked with their stored arrival numbers, so
        "first received wins a tie" means the same after a restart.
        """
        arrived: list[tuple[int, str, str]] = []
        invalid: list[str] = []
        for header, _work, status, sequence in side:
            try:
                self.tree.add_header(header, header_work(header))
            except InvalidBlock:
                continue  # a descendant of an invalid block: recorded invalid already
            if status in (Status.DATA, Status.VALID) and sequence is not None:
                arrived.append((sequence, header.hash, status))
            elif status == Status.INVALID:
                invalid.append(header.hash)
        for sequence, block_hash, status in sorted(arrived):
            if status == Status.VALID:
                self.tree.set_valid(block_hash, sequence)
            else:
                self.tree.set_data(block_hash, sequence)
        for block_hash in invalid:
            self.tree.set_invalid(block_hash)

    # --- reads ---------------------------------------------------------------------------

    @property
    def tip(self) -> Entry:
        return self.active.tip

    @property
    def height(self) -> int:
        return self.active.height

    # --- headers -------------------------------------------------------------------------

    def process_header(self, header: Header) -> Entry:
        """Accept a header into the tree, or raise InvalidBlock / BlockTooNew / BlockNotFound."""
        run = self.process_headers([header])
        if run.failure is not None:
            raise run.failure
        return run.accepted[0]

    def process_headers(self, headers: Iterable[Header], *, checked: bool = False) -> HeaderRun:
        """``process_header`` of each in order, up to the first that fails; the new ones
        are stored with one statement (a synced run of 2000 is one write, not 2000).
        ``checked``: every one passed ``check_header`` already (in a worker process)."""
        run = HeaderRun()
        new: list[tuple[Header, Entry]] = []
        with self._writes():
            try:
                for header in headers:
                    run.accepted.append(self._accept_header(header, new, checked))
            except (InvalidBlock, BlockTooNew, BlockNotFound) as exc:
                run.failure = exc
            finally:
                self.store.put_headers([(h, e.chain_work, e.status, e.sequence) for h, e in new])
        return run

    def _accept_header(
        self, header: Header, new: list[tuple[Header, Entry]], checked: bool = False
    ) -> Entry:
        known = self.tree.get(header.hash)
        if known is not None:
            if known.status is Status.INVALID:
                raise InvalidBlock("duplicate-invalid", f"block {header.hash} is known invalid")
            return known
        if not checked:
            check_header(header, self.params)
        parent = self.tree.get(header.prev_hash)
        if parent is None:
            raise BlockNotFound(f"parent {header.prev_hash} of {header.hash} is unknown")
        if parent.status is Status.INVALID:
            self._add_header(header, parent)  # raises bad-prevblk after recording it
        mtp = self.tree.median_time_past(parent, self.params.median_time_span)
        contextual_check_header(header, parent, mtp, self.clock(), self.params)
        entry = self._add_header(header, parent)
        new.append((header, entry))
        return entry

    def _add_header(self, header: Header, parent: Entry) -> Entry:
        try:
            return self.tree.add_header(header, header_work(header))
        except InvalidBlock as exc:
            if exc.code == "bad-prevblk":
                work = parent.chain_work + header_work(header)
                self.store.put_header(header, work, Status.INVALID, None)
            raise

    # --- blocks --------------------------------------------------------------------------

    def process_blocks(self, batch: Sequence[tuple[Block, Container[str]]]) -> list[BlockResult]:
        """Validate, store and (if they win) activate blocks, each given with the txids
        whose signatures already passed; never raises for bad data (``StoreError`` when
        storage fails). One activation at the end and everything in one storage
        transaction: a synced run of blocks costs one commit, and its switch connects
        them in one go.

        The results share one ``Reorg``. A block that failed to connect, or that descends
        from one that did, is REJECTED whatever its own checks said.
        """
        results: list[BlockResult] = []
        activation = Activation()
        with self._writes(), self.store.transaction(fsync=False):
            stored: list[tuple[Block, Entry]] = []
            for block, verified in batch:
                results.append(self._check_body(block, verified, stored))
            self.store.put_blocks([block for block, _ in stored])
            self.store.set_header_statuses([(e.hash, e.status, e.sequence) for _, e in stored])
            if any(r.outcome is BlockOutcome.ACCEPTED for r in results):
                self.activate_best_chain(activation)
        for result in results:
            result.reorg = activation.reorg
            if result.outcome is not BlockOutcome.ACCEPTED:
                continue
            failure = activation.invalid.get(result.hash)
            if failure is not None:
                result.outcome, result.code, result.message = (
                    BlockOutcome.REJECTED,
                    failure.code,
                    failure.message,
                )
            elif (entry := self.tree.get(result.hash)) is not None and (
                entry.status is Status.INVALID
            ):
                result.outcome, result.code = BlockOutcome.REJECTED, "bad-prevblk"
                result.message = "the block descends from an invalid block"
        return results

    def _check_body(
        self, block: Block, verified: Container[str], stored: list[tuple[Block, Entry]]
    ) -> BlockResult:
        """Check a block on its own and against its header's context; one that passes
        has its body added to ``stored`` (for the caller to write) and the tree."""
        block_hash = block.hash
        known = self.tree.get(block_hash)
        if known is not None and known.status is Status.INVALID:
            return BlockResult(
                BlockOutcome.REJECTED, block_hash, "duplicate-invalid", "block is known invalid"
            )
        if known is not None and known.status in (Status.DATA, Status.VALID):
            return BlockResult(BlockOutcome.DUPLICATE, block_hash)
        try:
            self.process_header(block.header)
            check_block(block, self.params, verified=verified)
        except BlockNotFound as exc:
            return BlockResult(
                BlockOutcome.NEED_PARENTS, block_hash, "prev-blk-not-found", str(exc)
            )
        except BlockTooNew as exc:
            return BlockResult(BlockOutcome.TOO_NEW, block_hash, exc.code, exc.message)
        except InvalidBlock as exc:
            if exc.code not in _MUTATION_CODES and block_hash in self.tree:
                self._mark_invalid(block_hash)
            return BlockResult(BlockOutcome.REJECTED, block_hash, exc.code, exc.message)
        self._fresh[block_hash] = block  # connecting it needs no read-back from disk
        if len(self._fresh) > FRESH_BLOCKS:
            del self._fresh[next(iter(self._fresh))]
        stored.append((block, self.tree.set_data(block_hash)))
        return BlockResult(BlockOutcome.ACCEPTED, block_hash)

    def activate_best_chain(self, activation: Activation) -> None:
        """Move to the most-work candidate; mark failures invalid and try the next best.

        A successful switch leaves the best candidate as the tip, so at most one switch
        commits per call; failed ones roll back entirely.
        """
        while True:
            best = self.tree.best_candidate(self.tip)
            if best is self.tip:
                return
            disconnect, connect = self.tree.reorg_path(self.tip, best)
            failure = self._switch(disconnect, connect, activation.reorg)
            if failure is None:
                return
            bad_hash, exc = failure
            log.warning("block %s is invalid: %s", bad_hash, exc)
            self._mark_invalid(bad_hash)
            activation.invalid[bad_hash] = exc

    def _switch(
        self, disconnect: list[Entry], connect: list[Entry], reorg: Reorg
    ) -> tuple[str, InvalidBlock] | None:
        """Disconnect then connect in one storage transaction; roll back on an invalid block."""
        old_blocks = [self._block(e.hash) for e in disconnect]
        new_blocks = [self._block(e.hash) for e in connect]
        try:
            with self.store.transaction(fsync=False):
                for block in old_blocks:
                    self.store.disconnect_block(block)
                ledger = Overlay(
                    self.store.ledger_for(tx for b in new_blocks for tx in b.transactions)
                )
                for entry, block in zip(connect, new_blocks, strict=True):
                    try:
                        apply_block_ledger(ledger, block)
                    except InvalidBlock as exc:
                        raise _Abort(entry.hash, exc) from exc
                self.store.connect_blocks(new_blocks)
                self.store.set_header_statuses(
                    [
                        (e.hash, Status.VALID, e.sequence)
                        for e in connect
                        if e.status is not Status.VALID
                    ]
                )
        except _Abort as abort:
            return abort.hash, abort.exc
        for entry in connect:
            self.tree.set_valid(entry.hash)
            self._fresh.pop(entry.hash, None)
        self.active.set_tip(connect[-1])
        if disconnect:
            log.info(
                "reorg: %d blocks disconnected, %d connected, new tip %s at %d",
                len(disconnect),
                len(connect),
                self.tip.hash,
                self.tip.height,
            )
        reorg.disconnected, reorg.connected = old_blocks, new_blocks
        return None

    def _block(self, block_hash: str) -> Block:
        block = self._fresh.get(block_hash) or self.store.get_block(block_hash)
        if block is None:
            raise RuntimeError(f"block {block_hash} has a DATA status but no stored body")
        return block

    def _mark_invalid(self, block_hash: str) -> None:
        entry = self.tree.set_invalid(block_hash)
        with self.store.transaction(fsync=False):
            stack = [entry]
            while stack:
                walk = stack.pop()
                self.store.set_header_status(walk.hash, Status.INVALID)
                stack.extend(walk.children)

    # --- templates -----------------------------------------------------------------------

    def template_header(self, merkle_root: str, miner: str, now_ms: int) -> Header:
        """A header (nonce 0) for a block on the current tip."""
        tip = self.tip
        mtp = self.tree.median_time_past(tip, self.params.median_time_span)
        return Header(
            version=1,
            height=tip.height + 1,
            prev_hash=tip.hash,
            merkle_root=merkle_root,
            timestamp=max(now_ms, mtp + 1),
            bits=next_bits(tip.height, tip.timestamp, self.params),
            miner=miner,
            nonce=0,
        )


class _Abort(Exception):
    def __init__(self, block_hash: str, exc: InvalidBlock) -> None:
        self.hash = block_hash
        self.exc = exc
        super().__init__(block_hash)
