"""Cyclic garbage collection held off for a short burst of allocations (a chart redraw).

A 24 h chart at 200x50 allocates thousands of short-lived lists and tuples: enough to trigger two
or three young-generation collections per redraw, each walking every young object, although
reference counting frees all of that garbage anyway. Holding the collector off for the burst and
letting it run once afterwards does the same work once, not three times.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_paused() -> Iterator[None]:
    """No cyclic collection inside the block; collection resumes (if it was on) when it ends."""
    if not gc.isenabled():  # already off (another burst, or the caller's choice): leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
