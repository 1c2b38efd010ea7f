"""Process set-up every entry point shares: gevent's monkey-patching (first,
and only in a process that runs the engine: ``import eslengine`` never
patches), logging, and the garbage collector's settings for a long-running
process."""

from __future__ import annotations

import sys


def patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level``: one text line a record, or with
    ``log_format`` "json" one JSON object a line (``logformat``)."""
    import logging

    # No format here or in gunicorn's uses these; skipping them saves a frame
    # walk and, under gevent, a dummy Thread object per greenlet that logs.
    # The process id stays: gunicorn's error log format has %(process)d.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from .logformat import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])


# The cyclic collector's young-generation threshold. A worker or API process
# allocates and frees many small containers per call (an event is a dict of
# ~150 strings, a request a dozen objects), nearly all of them freed by
# reference counting; at the default (700) the collector rescans them about
# every 700 allocations: about a tenth of a busy worker's CPU, measured
# with the freeze below. Cyclic garbage still goes within a few milliseconds
# at these rates.
GC_THRESHOLD = (20_000, 50, 50)


def tune_gc() -> None:
    """Set the collector for a long-running process, once it has loaded
    what it keeps for its lifetime: that goes to the permanent generation
    (``gc.freeze``), so full collections no longer walk it."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


# A worker gives the C heap's free memory back to the system every
# HEAP_TRIM_PERIOD seconds (glibc's malloc_trim; elsewhere nothing). Calls
# being placed in a burst free many blocks too large for Python's own
# allocator (greenlet stacks, the dicts of channel events) that glibc
# otherwise keeps: some 3 KiB of resident memory per call of the burst,
# measured with 10,000 calls. A trim of a 100 MiB heap takes about a
# millisecond.
HEAP_TRIM_PERIOD = 1.0


def trim_heap_forever(period: float = HEAP_TRIM_PERIOD) -> None:
    """Run in a greenlet: ``malloc_trim(0)`` every ``period`` seconds."""
    import ctypes

    import gevent

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return  # not glibc
    trim.argtypes = (ctypes.c_size_t,)
    while True:
        gevent.sleep(period)
        trim(0)
