"""Rows with the wrong number of fields: what a read records of them (counted, the first few
kept with their text masked and shortened) and the error that names them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mltrainer.state.errors import DatasetError
from mltrainer.state.masking import Masker
from mltrainer.tools.profiling.clip import clip

BadRowsPolicy = Literal["error", "skip"]


@dataclass
class BadRow:
    line: int | None
    fields: int
    text: str


@dataclass
class BadRows:
    """Rows with the wrong number of fields, as pyarrow reports them while parsing."""

    expected: int = 0
    count: int = 0
    samples: list[BadRow] = field(default_factory=list)
    keep: int = 10
    masker: Masker | None = None  # the rows' text is masked before it is shortened

    def handler(self, row: Any) -> str:
        self.expected = row.expected_columns
        self.count += 1
        if len(self.samples) < self.keep:
            text = clip(row.text, 200, self.masker, ellipsis="")
            self.samples.append(BadRow(row.number, row.actual_columns, text))
        return "skip"

    def reset(self) -> None:
        """Forget what an attempt saw: a retried read reports its own bad rows."""
        self.count, self.samples = 0, []

    def describe(self) -> str:
        shown = ", ".join(
            f"line {s.line} ({s.fields} fields)"
            if s.line
            else f"{s.fields} fields: {clip(s.text, 60, self.masker, ellipsis='')!r}"
            for s in self.samples[:5]
        )
        more = f" and {self.count - 5} more" if self.count > 5 else ""
        return (
            f"{self.count} row(s) have a wrong number of fields (expected {self.expected}): "
            f"{shown}{more}"
        )

    def error(self, name: str) -> DatasetError:
        return DatasetError(
            f"{name}: {self.describe()}.",
            next_step="Fix or remove those lines (an unquoted separator inside a value is the "
            "usual cause); profile_dataset reports them without failing.",
        )
