"""Shared output primitives: masked, private files and plots with no secret drawn into them."""

from __future__ import annotations

import stat
from pathlib import Path

from mltrainer.state.files import write_text
from mltrainer.state.masking import Masker
from mltrainer.tools.plotting import new_figure, render_png

CANARY = "canary-Zq81xLw0pT"


def test_text_artifacts_are_masked_and_private(tmp_path: Path) -> None:
    path = write_text(tmp_path / "sub" / "profile.json", f'{{"value": "{CANARY}"}}', masker())
    assert CANARY not in path.read_text()
    assert "***KEY***" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_no_secret_is_drawn_into_a_plot() -> None:
    figure = new_figure()
    ax = figure.add_subplot()
    ax.bar([CANARY, "other"], [3, 4], label=f"count of {CANARY}")
    ax.set_title(f"Target: {CANARY}")
    ax.legend()
    m = masker()
    render_png(figure, m)
    drawn = [t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text"))]
    drawn += [t.get_text() for t in ax.get_xticklabels()]
    assert not any(CANARY in text for text in drawn)
    assert "***KEY***" in drawn


def masker() -> Masker:
    return Masker({"KEY": CANARY})
