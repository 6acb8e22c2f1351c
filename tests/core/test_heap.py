"""freeze_startup_heap: start-up objects leave the collector's reach; later cyclic garbage is still freed."""

import gc
import weakref

from vlash.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_frozen_objects_stay_and_new_garbage_is_still_collected():
    before = Node()
    try:
        assert freeze_startup_heap() > 0
        frozen = weakref.ref(before)
        del before
        gc.collect()
        assert frozen() is not None  # frozen: not even a full collection looks at it
        later = Node()
        fresh = weakref.ref(later)
        del later
        gc.collect()
        assert fresh() is None  # made after the freeze: collected as usual
    finally:
        gc.unfreeze()
    gc.collect()
    assert frozen() is None  # unfrozen, the old cycle is collectable again
