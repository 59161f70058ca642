"""What a job asks of the machine: how many cores, work spread over them, memory back, pace.

The engine runs one single-threaded model per core (folds and candidates side by side), and the
profile's checks judge columns side by side, so ``n_workers`` is how wide either goes: the cores
this process may run on -- its CPU affinity where the OS has one (Linux, Windows), else every
core (macOS) -- capped by ``MLTRAINER_JOB_CORES`` (a fan-out's trial worker sets it to 1, a
person may set it). It is read here only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from mltrainer.state.errors import InvalidInput

CORES_ENV = "MLTRAINER_JOB_CORES"
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
# ``pace``'s piece of work took about PACE_REFERENCE_S on the machine the fixed time estimates
# were measured on (tools/jobs/train.py: AFTER_FIT_S). A 2-core VM that saved models and drew
# plots 1.8x slower (the stages after the fit: 1.9-4.6 s against 1.0-2.3 s on the benchmark's
# 13 datasets, at 15 s) took 6.3-8.5 ms, best of seven.
PACE_REFERENCE_S = 0.0041
PACE_MAX = 3.0


def n_workers() -> int:
    """The cores this job may use, at least one."""
    import psutil

    try:
        cores = len(psutil.Process().cpu_affinity() or [])
    except (AttributeError, NotImplementedError, psutil.Error):  # no affinity on this OS
        cores = 0
    cores = cores or os.cpu_count() or 1
    limit = os.environ.get(CORES_ENV)
    if limit is None or limit == "":
        return cores
    try:
        allowed = int(limit)
    except ValueError:
        allowed = 0
    if allowed < 1:
        raise InvalidInput(
            f"{CORES_ENV}={limit!r} is not a number of cores.",
            next_step=f"Set {CORES_ENV} to a whole number of at least 1, or unset it.",
        )
    return min(cores, allowed)


def pace() -> float:
    """How many times slower than the reference machine this one runs Python code (at least 1,
    at most PACE_MAX): the fixed time estimates scale by it, so a slow machine still ends a
    call within its budget. The best of seven runs of a few milliseconds of dicts, sorting and
    formatting (what saving a model, its report and its plots are made of): a run that another
    process interrupted does not count."""
    import time

    def work() -> None:
        table = {f"row{i}": (i * 7) % 1013 for i in range(5000)}
        ordered = sorted(table.items(), key=lambda item: (item[1], item[0]))
        "".join(f"{key}={value:.3f};" for key, value in ordered[:1500])

    best = float("inf")
    for _ in range(7):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return min(PACE_MAX, max(1.0, best / PACE_REFERENCE_S))


_MALLOC: list[Any] = []


def tune_allocator() -> None:
    """Make freed memory go back to the system, in this process and the ones it starts.

    Arrow allocates from the C heap: its default pool, mimalloc, kept the read buffers (a
    75k-row table's read left the worker at 258 MB, this way 160 MB; at 750k rows 1.0 GB
    against 530 MB). Glibc gets a fixed mmap threshold (big arrays are unmapped when freed
    instead of staying in the heap) and no more malloc arenas than workers. Call it before
    data is read; a pool chosen in ARROW_DEFAULT_MEMORY_POOL is left as it is. Without pyarrow
    imported yet, nothing imports it: the variable chooses its pool when it loads.
    """
    if os.environ.get(ARROW_POOL_ENV) is None:
        os.environ[ARROW_POOL_ENV] = "system"
        if "pyarrow" in sys.modules:
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())
    libc = _libc()
    if libc is None:
        return
    libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD (also stops its dynamic growth)
    libc.mallopt(-1, 512 * 1024)  # M_TRIM_THRESHOLD
    libc.mallopt(-8, 2)  # M_ARENA_MAX


def load_arrow() -> None:
    """Import pyarrow ahead of a job (the spare worker) with the memory pool ``tune_allocator``
    picks: pyarrow chooses its pool when it loads, and its default kept the read buffers (+34 MB
    in a worker that read mixed_100k's 75k rows). The variable is left as it was: setting it
    stays the job's start's, for the processes the job starts."""
    chosen = os.environ.get(ARROW_POOL_ENV)
    os.environ.setdefault(ARROW_POOL_ENV, "system")
    try:
        import pyarrow

        pyarrow.default_memory_pool()  # chosen now, while the variable says which
    finally:
        if chosen is None:
            del os.environ[ARROW_POOL_ENV]


def release_memory(collect: bool = False) -> None:
    """Hand freed heap pages back to the system (fitted models come and go during the search)."""
    if collect:
        import gc

        gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _libc() -> Any:
    if not _MALLOC:
        try:
            import ctypes

            lib = ctypes.CDLL("libc.so.6")
            lib.malloc_trim(0)
            _MALLOC.append(lib)
        except (OSError, AttributeError):
            _MALLOC.append(None)
    return _MALLOC[0]


def threads_each(n_items: int) -> int:
    """The threads each of ``n_items`` models fitted side by side (``parallel_map``) may use:
    the cores shared among them, at least one."""
    return max(1, n_workers() // max(1, n_items))


def parallel_map(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """Run ``fn`` over ``items`` on one thread per core; each model itself uses one thread.

    Single-threaded models in parallel beat multi-threaded models in sequence on small data and
    never oversubscribe the cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    workers = min(n_workers(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
