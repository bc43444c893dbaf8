"""The cyclic garbage collector's settings for a process that runs the bot (``tgbot run``).

With CPython's defaults the collector cost the bot about 0.18 ms of CPU per update in
``bench.cost``'s walk (docs/performance.md §1, issue 17, fifth pass). Most of it went to
full collections: each scanned the whole heap (80-150 ms there, every few hundred updates),
and every chat waits while one runs. Two settings change that:

* The youngest generation is collected after 10,000 net allocations instead of 700. An
  update's objects (PTB's ``Update``, ``Message`` and keyboards, the handlers' locals) are
  freed by their reference counts long before that, so far fewer collections find far less
  to scan. The older generations keep their thresholds.
* Whatever exists once the bot has started is frozen (``gc.freeze``): modules, PTB, the
  catalogs, the question router and every flow PTB's persistence loaded. The collector never
  scans it again. Reference counting still frees those objects; only a reference cycle among
  them would stay, which is why this is done once, after a collection, and only in a process
  that runs one bot (not in the tests, which start hundreds in one process).
"""

from __future__ import annotations

import gc

#: Net allocations of container objects between two collections of the youngest generation.
YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Collect the youngest generation every :data:`YOUNG_THRESHOLD` allocations."""
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)


def freeze_heap() -> int:
    """Collect what is garbage now, then keep everything left out of later collections;
    return how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
