"""Shared output primitives: masked, private files and plots with no secret drawn into them."""

from __future__ import annotations

import io
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mltrainer.state.files import write_text
from mltrainer.state.masking import Masker
from mltrainer.tools.plotting import new_figure, render_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


@pytest.mark.parametrize(("title", "layouts"), [("Target: y", 1), (f"Target: {CANARY}", 2)])
def test_a_plot_is_drawn_once_and_laid_out_again_only_when_a_text_was_masked(
    monkeypatch: pytest.MonkeyPatch, title: str, layouts: int
) -> None:
    """Masking needs the texts laid out, not drawn: the pixels are made once, by savefig, as
    for a figure saved with no masking, and the constrained layout is solved again only when
    a masked text may have changed size."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    counts = {"texts drawn": 0, "layouts": 0}

    def counting(name: str, method):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            counts[name] += 1
            return method(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(RendererAgg, "draw_text", counting("texts drawn", RendererAgg.draw_text))
    monkeypatch.setattr(
        ConstrainedLayoutEngine, "execute", counting("layouts", ConstrainedLayoutEngine.execute)
    )

    def figure_titled(text: str) -> Figure:
        figure = new_figure()
        ax = figure.add_subplot()
        ax.bar(["a", "b"], [3, 4])
        ax.set_title(text)
        return figure

    figure_titled("Target: y").savefig(io.BytesIO(), format="png")
    unmasked = counts["texts drawn"]
    counts.update({"texts drawn": 0, "layouts": 0})

    figure = figure_titled(title)
    png = render_png(figure, masker())

    assert png.startswith(b"\x89PNG")
    assert counts == {"texts drawn": unmasked, "layouts": layouts}
    assert CANARY not in figure.axes[0].get_title()


def masker() -> Masker:
    return Masker({"KEY": CANARY})
