"""How many cores a training job may use: read in one place, the same way on every OS.

The engine runs one single-threaded model per core (folds and candidates side by side), so this
number is how wide it goes. It is the cores this process may run on -- its CPU affinity where the
OS has one (Linux, Windows), else every core (macOS) -- capped by ``MLTRAINER_JOB_CORES`` when the
job manager sets it for a job.
"""

from __future__ import annotations

import os

from mltrainer.state.errors import InvalidInput

CORES_ENV = "MLTRAINER_JOB_CORES"


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
