"""Reading and profiling tabular files: sniffing, typing, target/task inference, warnings.

`read_table` is the project's one reader of tabular files; `judge` is the one judge of columns
(kinds, task, time drift, leakage), whose verdict `profile` shows a person and the training
planner acts on.
"""

from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.judge import Verdict, judge
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    DatasetProfile,
    ProfileWarning,
    TargetAnalysis,
    TimeAxis,
    TimeDrift,
)
from mltrainer.tools.profiling.profile import profile
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
    "Verdict",
    "judge",
    "profile",
    "read_table",
    "sniff",
]
