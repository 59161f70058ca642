"""Rendering matplotlib figures to PNG with no secret drawn into them.

Every plot the project makes (profiles, evaluation reports) is rendered here: before the
pixels exist, each piece of text on the figure (titles, axis labels, tick labels, legends,
annotations) passes through the masker, so a class label, column name or value equal to a
secret is drawn as ``***NAME***``. Figures are drawn with the Agg canvas (no pyplot, no
global state).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from mltrainer.state.masking import Masker

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float = 6.0, height: float = 4.5, *, dpi: int = 100) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def mask_texts(figure: Figure, masker: Masker) -> int:
    """Replace every text on ``figure`` by its masked form; the number of texts changed."""
    from matplotlib.text import Text

    figure.draw_without_rendering()  # lays the figure out (tick labels exist only then)
    changed = 0
    for artist in figure.findobj(Text):
        text = artist.get_text()
        masked = masker.mask(text)
        if masked != text:
            artist.set_text(masked)
            changed += 1
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            labels = [label.get_text() for label in axis.get_ticklabels()]
            masked_labels = [masker.mask(label) for label in labels]
            if masked_labels != labels:
                axis.set_ticks(axis.get_ticklocs(), masked_labels)
                changed += 1
    return changed


def render_png(figure: Figure, masker: Masker, **savefig: object) -> bytes:
    """The figure as PNG bytes, its texts masked first.

    The pixels are made once, by ``savefig``; the layout computed for masking is kept unless
    a masked text may have changed size (drawing twice and solving the constrained layout
    again took a quarter of each plot's time).
    """
    if not mask_texts(figure, masker):
        # No engine at all keeps the positions the layout set; "none" would leave a placeholder
        # engine, for which savefig lays every text out once more before drawing (a third of a
        # plot's time).
        figure.set_layout_engine(None)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig)  # type: ignore[arg-type]
    return buffer.getvalue()
