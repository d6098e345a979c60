"""``gc_paused``: no cyclic garbage collection while a large batch is built.

A batch of 10,000 identifiers allocates hundreds of thousands of small
objects that stay alive until it ends (results, rows, decoded JSON).
CPython's cyclic collector runs on allocation counts and, as those objects
pile up, repeatedly walks every object in the process: measured on the
Membership page's Confirm of 10,000 identifiers, a quarter of the request.
None of these objects form cycles, so reference counting frees them all the
same; the collector is switched back on (if it was on) when the block ends,
and catches up then with whatever is left.

The switch is process-wide: another thread's allocations meanwhile go
uncollected for cycles until the block ends, which is short; a block that
found the collector off (paused by another thread, or by the caller) leaves
it off."""

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_gc(function: Callable[P, R]) -> Callable[P, R]:
    """``gc_paused`` around every call of ``function`` (a decorator)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return function(*args, **kwargs)

    return wrapper
