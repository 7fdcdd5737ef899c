"""Small PNG charts for the digest and the leadership report: a renewal likelihood trend
per account and the indicator families' importance over quarters.

Drawn with matplotlib's object API on the Agg canvas (no pyplot: no global backend state,
safe in a server thread); returned as PNG bytes so callers inline them (data: URIs in an
e-mail) or write them next to a report. `sparkline` is the text twin for Markdown.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BARS = "▁▂▃▄▅▆▇█"
TIER_FILL = {"red": "#fde2e1", "yellow": "#fff4cc", "green": "#e6f4ea"}
LINE = "#1a4d8f"


def _png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def trend_png(
    points: Sequence[tuple[date, float]],
    red_below: float,
    yellow_below: float,
    *,
    size: tuple[float, float] = (2.6, 0.9),
    dpi: int = 100,
) -> bytes:
    """Renewal likelihood over snapshots on a fixed 0–1 scale, over the risk-tier bands."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.2, 0.98, 0.78))
    xs = [pd.Timestamp(d) for d, _ in points]
    ys = [float(v) for _, v in points]
    for low, high, tier in ((0.0, red_below, "red"), (red_below, yellow_below, "yellow"), (yellow_below, 1.0, "green")):
        ax.axhspan(low, high, color=TIER_FILL[tier], linewidth=0)
    ax.plot(xs, ys, color=LINE, linewidth=1.4)
    if xs:
        ax.plot(xs[-1:], ys[-1:], "o", color=LINE, markersize=3)
        ticks = [xs[0], xs[-1]] if len(xs) > 1 else xs
        ax.set_xticks(ticks)
        labels = ax.set_xticklabels([x.strftime("%-d %b %Y") for x in ticks], fontsize=6, color="#555555")
        labels[0].set_horizontalalignment("left")
        labels[-1].set_horizontalalignment("right")
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.tick_params(axis="x", length=0, pad=1)
    for side in ax.spines.values():
        side.set_visible(False)
    if len(xs) > 1:
        pad = (xs[-1] - xs[0]) * 0.03
        ax.set_xlim(xs[0] - pad, xs[-1] + pad)
    return _png(fig, dpi)


def sparkline(values: Sequence[float]) -> str:
    """A text sparkline on the fixed 0–1 scale (so accounts compare), e.g. "▇▇▅▃"."""
    return "".join(BARS[min(len(BARS) - 1, max(0, int(float(v) * len(BARS))))] for v in values)


def family_trend_png(shares: pd.DataFrame, title: str | None = None, *, dpi: int = 110) -> bytes:
    """One panel per target: each family's share of the total mean |SHAP| at each date.

    `shares`: columns target, as_of, family_name, share (0–1); one line per family."""
    targets = list(dict.fromkeys(shares["target"]))
    fig = Figure(figsize=(6.2 * max(1, len(targets)), 4.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(targets)), squeeze=False)[0]
    for ax, target in zip(axes, targets, strict=False):
        part = shares[shares["target"] == target]
        for family, rows in part.groupby("family_name", sort=False):
            rows = rows.sort_values("as_of")
            ax.plot(
                pd.to_datetime(rows["as_of"]),
                rows["share"] * 100,
                marker="o",
                markersize=3,
                linewidth=1.5,
                label=str(family),
            )
        ticks = sorted(pd.to_datetime(part["as_of"].unique()))
        ax.set_xticks(ticks)
        ax.set_xticklabels([t.strftime("%Y-%m-%d") for t in ticks])
        ax.set_ylim(bottom=0)
        ax.set_title(f"{target}: share of total mean |SHAP|", fontsize=10)
        ax.set_ylabel("% of total", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _png(fig, dpi)
