"""Group commit: concurrent callers share one write and each still waits for its own."""

import asyncio

import pytest

from storage.batch import GroupCommit


async def test_callers_arriving_together_share_one_flush_and_wait_for_it():
    flushes: list[list[int]] = []
    released = asyncio.Event()

    async def flush(items: list[int]) -> None:
        await released.wait()
        flushes.append(items)

    group = GroupCommit(flush)
    callers = [asyncio.create_task(group.add(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in callers)  # nobody returns before the write
    released.set()
    await asyncio.gather(*callers)
    assert flushes == [[0, 1, 2, 3, 4]]


async def test_items_arriving_during_a_flush_go_into_the_next_one():
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> None:
        if not flushes:
            await gate.wait()
        flushes.append(items)

    group = GroupCommit(flush)
    first = asyncio.create_task(group.add(1))
    await asyncio.sleep(0.01)  # the first flush is running
    later = [asyncio.create_task(group.add(n)) for n in (2, 3)]
    await asyncio.sleep(0.01)
    assert not first.done() and not any(t.done() for t in later)
    gate.set()
    await asyncio.gather(first, *later)
    assert flushes == [[1], [2, 3]]


async def test_a_failed_flush_fails_its_callers_only():
    calls: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("disk full")

    group = GroupCommit(flush)
    failing = [asyncio.create_task(group.add(n)) for n in (1, 2)]
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    await group.add(3)
    assert calls == [[1, 2], [3]]


async def test_a_cancelled_caller_does_not_cancel_its_neighbours_write():
    written: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> None:
        await gate.wait()
        written.append(items)

    group = GroupCommit(flush)
    quitter = asyncio.create_task(group.add(1))
    stayer = asyncio.create_task(group.add(2))
    await asyncio.sleep(0.01)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    gate.set()
    await stayer
    assert written == [[1, 2]]
