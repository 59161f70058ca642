"""A prepared matplotlib font cache, so a sandbox that plots does not rebuild it every time.

Each sandbox starts with an empty, writable ``MPLCONFIGDIR``; building matplotlib's font list
there costs seconds on every fresh call. The cache is built once per state directory by
our own code (no user input), mounted read-only into each sandbox, and copied into the
sandbox's config directory by the runner at start.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

INSIDE = "/opt/mltrainer/mplcache"


def ready(cache_dir: Path) -> bool:
    return any(cache_dir.glob("fontlist-*.json"))


def build(cache_dir: Path) -> bool:
    """Build the font list into ``cache_dir``; True when it is there afterwards."""
    if ready(cache_dir):
        return True
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="mltrainer-mpl-home-") as empty_home:
        env = {
            "MPLCONFIGDIR": str(cache_dir),
            "MPLBACKEND": "Agg",
            "HOME": empty_home,  # no user font directories: the sandbox cannot see them
            "PATH": "/usr/bin:/bin",
        }
        try:
            subprocess.run(
                [sys.executable, "-I", "-c", "import matplotlib.font_manager"],
                env=env,
                capture_output=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return ready(cache_dir)
