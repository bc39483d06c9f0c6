"""Giving freed native memory back to the system.

A Vosk recognizer allocates tens of MB in Kaldi; when it is freed, glibc keeps the
pages for reuse, so a server that served many sessions would keep the size of its
busiest moment.  ``malloc_trim`` returns them (a few milliseconds).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None on other systems and C libraries."""
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None


def trim_heap() -> None:
    """Return free heap memory to the system, where the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
