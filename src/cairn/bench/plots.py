"""PNG plots of benchmark results (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_latency_timeline", "plot_lines"]

_PHASE_COLOURS = {
    "idle": "tab:blue",
    "ingest": "tab:orange",
    "index": "tab:green",
    # `cairn bench soak`: before, during and after a component restart
    "before": "tab:blue",
    "during": "tab:red",
    "after": "tab:green",
    "steady": "tab:blue",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency_timeline(
    samples: Sequence[tuple[float, float, str]],
    phases: Sequence[tuple[str, float, float]],
    events: Sequence[tuple[float, str]],
    path: Path,
    *,
    title: str,
) -> None:
    """Each query's latency against the time it started, by phase; ingest and index events marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    for name, began, ended in phases:
        colour = _PHASE_COLOURS.get(name, "tab:gray")
        ax.axvspan(began, ended, color=colour, alpha=0.06)
        xs = [t for t, _, phase in samples if phase == name]
        ys = [ms for _, ms, phase in samples if phase == name]
        ax.scatter(xs, ys, s=3, color=colour, label=f"{name} ({len(xs)} queries)", alpha=0.6)
    ax.set_yscale("log")
    low, _ = ax.get_ylim()
    ingests = [t for t, kind in events if kind == "ingest"]
    if ingests:
        ax.plot(ingests, [low * 1.15] * len(ingests), "|", color="tab:red", markersize=10, label="file ingested")
    builds = [t for t, kind in events if kind in ("index_start", "index_end")]
    for i, t in enumerate(builds):
        ax.axvline(t, color="tab:purple", linestyle="--" if i % 2 == 0 else ":", linewidth=0.8)
    if builds:
        ax.plot([], [], color="tab:purple", linestyle="--", label="index build start (--) / end (..)")
    if phases:
        ax.set_xlim(0, max(ended for _, _, ended in phases) * 1.01)
    ax.set_xlabel("seconds since the first phase began")
    ax.set_ylabel("query latency, ms (log)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, markerscale=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lines(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
) -> None:
    """One line per named series of (x, y) points."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
