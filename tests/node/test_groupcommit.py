"""Group commit: submissions queued behind a running flush go together in the next one.

A fake flush records every list it is called with and answers ``"<call>:<item>"`` per
item, so each test sees which flush took which items and that every caller got back
exactly its own slice. Its gate, an ``asyncio.Event``, holds a flush open while the test
queues more submissions behind it; nothing here sleeps on the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from node.groupcommit import GroupCommit

TIMEOUT_S = 2.0


class FlushError(Exception):
    """What the fake flush raises when it is given a poisoned item."""


class FakeFlush:
    def __init__(self, poison: frozenset[int] = frozenset()) -> None:
        self.calls: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.poison = poison

    async def __call__(self, items: list[int]) -> list[str]:
        self.calls.append(list(items))
        call = len(self.calls)
        await self.gate.wait()
        if self.poison.intersection(items):
            raise FlushError(f"flush {call} failed")
        return [f"{call}:{item}" for item in items]


def answers(call: int, items: Sequence[int]) -> list[str]:
    return [f"{call}:{item}" for item in items]


def group_commit(flush: FakeFlush, max_items: int = 100) -> GroupCommit[int, str]:
    return GroupCommit(flush, name="test-flush", max_items=max_items)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (no clock involved)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def submit_all(
    commit: GroupCommit[int, str], *submissions: Sequence[int]
) -> list[asyncio.Task[list[str]]]:
    """One task per submission, each past ``submit``'s queueing before the next starts."""
    tasks = []
    for items in submissions:
        tasks.append(asyncio.create_task(commit.submit(items)))
        await asyncio.sleep(0)
    return tasks


async def results(tasks: Sequence[asyncio.Task[list[str]]]) -> list[list[str]]:
    async with asyncio.timeout(TIMEOUT_S):
        return await asyncio.gather(*tasks)


async def started_first(commit: GroupCommit[int, str], flush: FakeFlush) -> asyncio.Task[list[str]]:
    """Submit ``[0]`` with the gate closed and wait until its flush is running."""
    flush.gate.clear()
    (first,) = await submit_all(commit, [0])
    await until(lambda: len(flush.calls) == 1)
    return first


async def test_a_lone_submission_is_flushed_alone_and_gets_its_results() -> None:
    flush = FakeFlush()
    commit = group_commit(flush)
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit([7, 8, 9]) == answers(1, [7, 8, 9])
    assert flush.calls == [[7, 8, 9]]


async def test_a_later_submission_after_an_idle_spell_gets_a_flush_of_its_own() -> None:
    flush = FakeFlush()
    commit = group_commit(flush)
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit([1]) == answers(1, [1])
        assert await commit.submit([2, 3]) == answers(2, [2, 3])
    assert flush.calls == [[1], [2, 3]]


async def test_the_flusher_is_a_task_of_its_own_under_the_given_name() -> None:
    flush = FakeFlush()
    commit = group_commit(flush)
    first = await started_first(commit, flush)
    names = [task.get_name() for task in asyncio.all_tasks()]
    assert names.count("test-flush") == 1
    flush.gate.set()
    assert await results([first]) == [answers(1, [0])]


async def test_submissions_made_during_a_flush_go_together_in_one_next_flush_in_order() -> None:
    flush = FakeFlush()
    commit = group_commit(flush)
    first = await started_first(commit, flush)
    queued = await submit_all(commit, [1, 2], [3], [4, 5, 6], [])
    assert flush.calls == [[0]]
    flush.gate.set()
    assert await results([first, *queued]) == [
        answers(1, [0]),
        answers(2, [1, 2]),
        answers(2, [3]),
        answers(2, [4, 5, 6]),
        [],
    ]
    assert flush.calls == [[0], [1, 2, 3, 4, 5, 6]]


async def test_max_items_splits_the_queue_between_whole_submissions() -> None:
    flush = FakeFlush()
    commit = group_commit(flush, max_items=4)
    first = await started_first(commit, flush)
    submissions = [[1, 2], [3, 4], [5], [6, 7, 8, 9, 10], [11]]
    queued = await submit_all(commit, *submissions)
    flush.gate.set()
    assert await results([first, *queued]) == [
        answers(1, [0]),
        answers(2, [1, 2]),
        answers(2, [3, 4]),
        answers(3, [5]),
        answers(4, [6, 7, 8, 9, 10]),
        answers(5, [11]),
    ]
    assert flush.calls == [[0], [1, 2, 3, 4], [5], [6, 7, 8, 9, 10], [11]]


async def test_a_lone_submission_larger_than_max_items_still_goes_in_one_flush() -> None:
    flush = FakeFlush()
    commit = group_commit(flush, max_items=3)
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit(list(range(10))) == answers(1, range(10))
    assert flush.calls == [list(range(10))]


async def test_a_failed_flush_reaches_every_caller_of_its_group_and_the_next_group_still_goes() -> (
    None
):
    flush = FakeFlush(poison=frozenset({99}))
    commit = group_commit(flush, max_items=3)
    first = await started_first(commit, flush)
    doomed_one, doomed_two, after = await submit_all(commit, [1], [2, 99], [3])
    flush.gate.set()
    assert await results([first, after]) == [answers(1, [0]), answers(3, [3])]
    for doomed in (doomed_one, doomed_two):
        with pytest.raises(FlushError, match="flush 2 failed"):
            await doomed
    assert flush.calls == [[0], [1, 2, 99], [3]]
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit([4]) == answers(4, [4])


async def test_a_failed_lone_flush_raises_in_its_caller_and_a_new_submission_still_goes() -> None:
    flush = FakeFlush(poison=frozenset({99}))
    commit = group_commit(flush)
    async with asyncio.timeout(TIMEOUT_S):
        with pytest.raises(FlushError, match="flush 1 failed"):
            await commit.submit([99])
        assert await commit.submit([5]) == answers(2, [5])


async def test_cancelled_callers_do_not_stop_the_others_getting_their_results() -> None:
    flush = FakeFlush()
    commit = group_commit(flush)
    first = await started_first(commit, flush)
    kept_one, gone, kept_two = await submit_all(commit, [1], [2], [3, 4])
    first.cancel()
    gone.cancel()
    for cancelled in (first, gone):
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    flush.gate.set()
    assert await results([kept_one, kept_two]) == [answers(2, [1]), answers(2, [3, 4])]
    assert flush.calls == [[0], [1, 2, 3, 4]]
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit([5]) == answers(3, [5])


# --- patient submissions (synced runs) -------------------------------------------------------

LONG_LINGER_S = 60.0
"""Far beyond TIMEOUT_S: a test that finishes did not wait out the linger."""


async def test_patient_submissions_wait_to_fill_the_group_then_go_together() -> None:
    flush = FakeFlush()
    commit = GroupCommit(flush, name="test-flush", max_items=4, linger_s=LONG_LINGER_S)
    one = asyncio.create_task(commit.submit([1, 2], patient=True))
    await until(lambda: commit._queued() == 2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert flush.calls == []
    two = asyncio.create_task(commit.submit([3, 4], patient=True))
    assert await results([one, two]) == [answers(1, [1, 2]), answers(1, [3, 4])]
    assert flush.calls == [[1, 2, 3, 4]]


async def test_an_impatient_submission_ends_the_wait_at_once() -> None:
    flush = FakeFlush()
    commit = GroupCommit(flush, name="test-flush", max_items=100, linger_s=LONG_LINGER_S)
    synced = asyncio.create_task(commit.submit([1, 2], patient=True))
    await until(lambda: commit._queued() == 2)
    relayed = asyncio.create_task(commit.submit([3]))
    assert await results([synced, relayed]) == [answers(1, [1, 2]), answers(1, [3])]
    assert flush.calls == [[1, 2, 3]]


async def test_a_lone_patient_submission_goes_after_the_linger() -> None:
    flush = FakeFlush()
    commit = GroupCommit(flush, name="test-flush", max_items=100, linger_s=0.01)
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit([5], patient=True) == answers(1, [5])
    assert flush.calls == [[5]]


async def test_without_a_linger_patient_submissions_go_as_any_other() -> None:
    flush = FakeFlush()
    commit = group_commit(flush)
    async with asyncio.timeout(TIMEOUT_S):
        assert await commit.submit([6], patient=True) == answers(1, [6])


@pytest.mark.parametrize("steps", [0, 10], ids=["before-it-ran", "while-lingering"])
async def test_cancelling_the_flusher_cancels_its_waiting_callers(steps: int) -> None:
    flush = FakeFlush()
    commit = GroupCommit(flush, name="test-flush", max_items=100, linger_s=LONG_LINGER_S)
    waiting = asyncio.create_task(commit.submit([1], patient=True))
    await until(lambda: commit._queued() == 1)
    for _ in range(steps):
        await asyncio.sleep(0)
    (flusher,) = [t for t in asyncio.all_tasks() if t.get_name() == "test-flush"]
    flusher.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(TIMEOUT_S):
            await waiting
    assert flush.calls == []
