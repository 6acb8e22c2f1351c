"""Keep Python's cyclic garbage collector from pausing a real-time loop.

A full collection walks every tracked object: about 17 ms in a control process that holds a MuJoCo
driver and about 85 ms once torch is imported (measured here), a whole 50 Hz period or more. The
objects alive when a loop starts (modules, the model, the driver) live for the whole run, so they
are moved out of the collector's reach with :func:`gc.freeze`; garbage made later is still
collected as usual, and a full collection then takes microseconds.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then exempt every surviving object from future collections; returns how many.

    Call once per process, after set-up and just before the loop starts.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
