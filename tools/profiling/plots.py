"""Small PNG plots of a profile: target distribution, missingness, correlations.

Rendered through ``mltrainer.tools.plotting.render_png`` (every text on the figure masked) and
written with ``mltrainer.state.files.write_bytes`` (0600); labels taken from the data are
masked before they are shortened, so no secret's prefix is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrainer.state.files import write_bytes
from mltrainer.state.masking import Masker
from mltrainer.tools.plotting import new_figure, render_png
from mltrainer.tools.profiling.clip import clip
from mltrainer.tools.profiling.models import ColumnProfile, PlotRef, TargetAnalysis

if TYPE_CHECKING:
    import pandas as pd

MAX_BARS = 25
MAX_CORRELATED = 15


def _save(fig: Any, directory: Path, name: str, masker: Masker) -> PlotRef:
    data = render_png(fig, masker, dpi=72, bbox_inches="tight")
    path = write_bytes(directory / f"{name}.png", data)
    return PlotRef(name=name, path=str(path), bytes=len(data))  # type: ignore[arg-type]


def make_plots(
    frame: pd.DataFrame,
    columns: list[ColumnProfile],
    target: TargetAnalysis | None,
    directory: Path,
    masker: Masker,
) -> list[PlotRef]:
    plots = []
    if target is not None:
        plots.append(target_plot(frame, target, directory, masker))
    if any(c.missing for c in columns):
        plots.append(missingness_plot(columns, directory, masker))
    numeric = [c.name for c in columns if c.kind == "numeric"]
    if target is not None and target.stats is not None and target.column not in numeric:
        numeric.append(target.column)
    if len(numeric) >= 2:
        plots.append(correlation_plot(frame, numeric, target, directory, masker))
    return plots


def target_plot(
    frame: pd.DataFrame, target: TargetAnalysis, directory: Path, masker: Masker
) -> PlotRef:
    fig = new_figure(5, 3.2)
    ax = fig.subplots()
    if target.classes:
        labels = [clip(c.value, 20, masker) for c in target.classes]
        ax.barh(labels[::-1], [c.count for c in target.classes][::-1], color="#4C72B0")
        ax.set_xlabel("rows (in the sample)")
    else:
        values = frame[target.column].dropna().astype(float)
        ax.hist(values, bins=40, color="#4C72B0")
        ax.set_ylabel("rows (in the sample)")
    ax.set_title(f"Target: {clip(target.column, 40, masker)} ({target.task})", fontsize=10)
    return _save(fig, directory, "target_distribution", masker)


def missingness_plot(columns: list[ColumnProfile], directory: Path, masker: Masker) -> PlotRef:
    missing = sorted((c for c in columns if c.missing), key=lambda c: -c.missing_ratio)[:MAX_BARS]
    fig = new_figure(5, 0.6 + 0.22 * len(missing))
    ax = fig.subplots()
    names = [clip(c.name, 24, masker) for c in missing]
    ax.barh(names[::-1], [c.missing_ratio for c in missing][::-1])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of rows missing")
    ax.set_title("Missing values", fontsize=10)
    return _save(fig, directory, "missingness", masker)


def correlation_plot(
    frame: pd.DataFrame,
    numeric: list[str],
    target: TargetAnalysis | None,
    directory: Path,
    masker: Masker,
) -> PlotRef:
    data = frame[numeric].astype(float)
    if len(numeric) > MAX_CORRELATED:
        keep = data.var().sort_values(ascending=False).index[:MAX_CORRELATED].tolist()
        if target is not None and target.column in numeric and target.column not in keep:
            keep[-1] = target.column
        data = data[keep]
    corr = data.corr(method="spearman").fillna(0.0)
    size = 2.5 + 0.3 * len(corr)
    fig = new_figure(size, size * 0.85)
    ax = fig.subplots()
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [clip(c, 16, masker) for c in corr.columns]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("Spearman correlations", fontsize=10)
    return _save(fig, directory, "correlations", masker)
