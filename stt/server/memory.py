"""Giving freed native memory back to the system.

A Vosk recognizer allocates tens of MB in Kaldi; when it is freed, glibc keeps the
pages for reuse, so a server that served many sessions would keep the size of its
busiest moment.  ``malloc_trim`` returns them (a few milliseconds).  Fewer malloc
arenas keep what cannot be returned (pages with a live allocation on them) from
being scattered over many heaps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable

#: ``mallopt`` parameter: the most arenas glibc makes (default: 8 per core).
M_ARENA_MAX = -8


@functools.cache
def _libc_function(name: str) -> Callable[..., int] | None:
    """A glibc function; None on other systems and C libraries."""
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(library), name, None) if library else None


def trim_heap() -> None:
    """Return free heap memory to the system, where the C library can (glibc)."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


def limit_heap_arenas(count: int) -> None:
    """Let glibc make at most ``count`` malloc arenas; call before threads start.

    glibc gives a thread that meets a locked arena a new one, up to 8 per core, and
    each keeps its own free memory: after a burst of sessions, Kaldi's freed memory
    would stay spread over many half-empty heaps (measured: RSS 6-9 % above the
    start after 16 sessions, 3-4 % with as many arenas as threads that allocate).
    """
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(M_ARENA_MAX, count)
