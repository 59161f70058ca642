"""Reading and profiling tabular files: sniffing, typing, target/task inference, warnings.

`read_table` is the project's one reader of tabular files; `profile` describes a dataset for a
person and for the training planner (whose warnings say which columns to drop).
"""

from mltrainer.tools.profiling.formats import TableFormat
from mltrainer.tools.profiling.models import (
    ColumnProfile,
    DatasetProfile,
    ProfileWarning,
    TargetAnalysis,
    TimeAxis,
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
    "profile",
    "read_table",
    "sniff",
]
