"""Reading and profiling tabular files: sniffing, typing, target/task inference, warnings.

`read_table` is the project's one reader of tabular files; `judge.judge` is the one judge of
columns (kinds, task, time drift, leakage), whose verdict `profile.profile` shows a person and
the training planner acts on.

This package exports only what imports no numpy: the server imports it at start (to peek at a
table's header) and runs without numpy until a tool needs it, ~12 MB less for its lifetime.
Import the judge and the profiler from their modules.
"""

from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    DatasetProfile,
    ProfileWarning,
    TargetAnalysis,
    TimeAxis,
    TimeDrift,
)
from mltrainer.tools.profiling.reader import read_table
from mltrainer.tools.profiling.sniff import sniff

__all__ = [
    "ColumnProfile",
    "DatasetProfile",
    "ProfileWarning",
    "TableFormat",
    "TargetAnalysis",
    "TimeAxis",
    "TimeDrift",
    "read_table",
    "sniff",
]
