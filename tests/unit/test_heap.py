"""The garbage collector's settings for ``tgbot run`` (tgbot.heap)."""

from __future__ import annotations

import gc
import weakref

import pytest

from tgbot.heap import YOUNG_THRESHOLD, freeze_heap, tune_collector


@pytest.fixture
def restore_collector():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_tune_collector_raises_only_the_youngest_threshold(restore_collector):
    gc.set_threshold(700, 9, 11)
    tune_collector()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 9, 11)


def test_freeze_heap_collects_garbage_first_and_freezes_what_lives(restore_collector):
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    dead = weakref.ref(a)
    del a, b
    alive = _Node()
    frozen = freeze_heap()
    assert dead() is None  # collected before the freeze, not kept forever
    assert frozen == gc.get_freeze_count() > 0
    assert not any(o is alive for o in gc.get_objects())  # frozen: out of the collector's view
    gc.unfreeze()
    assert any(o is alive for o in gc.get_objects())
