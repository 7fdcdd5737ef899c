"""The one chart stack, PNG for mail and pages alike: a small churn risk trend per account
(digest), risk and likelihoods over snapshots with the risk-tier bands (account page),
and the indicator families' importance over quarters (leadership report).

Drawn with matplotlib's object API on the Agg canvas (no pyplot: no global backend state,
safe in a server thread); returned as PNG bytes so callers inline them (`png_data_uri`)
or write them next to a report. `sparkline` and `summary` are the text twins: a
sparkline for Markdown, a plain-language summary for an image's alt text.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

BARS = "▁▂▃▄▅▆▇█"
TIER_FILL = {"red": "#fde2e1", "yellow": "#fff4cc", "green": "#e6f4ea"}
LINE = "#1a4d8f"


def _png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a data: URI for an <img src>, in a page or an e-mail."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def percent(p: float) -> str:
    """A probability in words with the precision small risks need: "0.4%", "8.4%", "86%"."""
    return f"{100 * p:.1f}%" if 100 * p < 9.95 else f"{p:.0%}"


def scale_top(values: Iterable[float | None], at_least: float = 0.0) -> float:
    """The top of a 0-based probability axis: a little above the largest value (and
    `at_least`), rounded up to 1% under 10% and to 5% above, at most 100%; so a churn
    risk of a few percent does not hug the floor of a 0–100% chart."""
    found = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    high = 1.15 * max([at_least, *found]) or 1.0
    step = 0.01 if high <= 0.1 else 0.05
    return min(1.0, round(step * math.ceil(high / step - 1e-9), 4))


def trend_png(
    points: Sequence[tuple[date, float]],
    yellow_at: float,
    red_at: float,
    *,
    top: float = 1.0,
    size: tuple[float, float] = (2.6, 0.9),
    dpi: int = 100,
) -> bytes:
    """A risk over snapshots (higher is worse) from 0 to `top`, over the risk-tier bands:
    green below `yellow_at`, yellow, then red from `red_at`."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.2, 0.98, 0.78))
    xs = [pd.Timestamp(d) for d, _ in points]
    ys = [float(v) for _, v in points]
    for low, high, tier in (
        (0.0, yellow_at, "green"),
        (yellow_at, red_at, "yellow"),
        (red_at, max(top, red_at), "red"),
    ):
        ax.axhspan(low, high, color=TIER_FILL[tier], linewidth=0)
    ax.plot(xs, ys, color=LINE, linewidth=1.4)
    if xs:
        ax.plot(xs[-1:], ys[-1:], "o", color=LINE, markersize=3)
        ticks = [xs[0], xs[-1]] if len(xs) > 1 else xs
        ax.set_xticks(ticks)
        labels = ax.set_xticklabels([x.strftime("%-d %b %Y") for x in ticks], fontsize=6, color="#555555")
        labels[0].set_horizontalalignment("left")
        labels[-1].set_horizontalalignment("right")
    ax.set_ylim(0, top)
    ax.set_yticks([])
    ax.tick_params(axis="x", length=0, pad=1)
    for side in ax.spines.values():
        side.set_visible(False)
    if len(xs) > 1:
        pad = (xs[-1] - xs[0]) * 0.03
        ax.set_xlim(xs[0] - pad, xs[-1] + pad)
    return _png(fig, dpi)


@dataclass(frozen=True)
class Series:
    """One line of `likelihood_png`: a name (legend, summary), a value per date (None: no
    value there), a colour and a dash pattern (on/off lengths in points; empty: solid)."""

    name: str
    values: Sequence[float | None]
    colour: str
    dashes: tuple[float, ...] = ()


def _known(v: float | None) -> bool:
    return v is not None and math.isfinite(float(v))


def summary(dates: Sequence[date], series: Sequence[Series]) -> str:
    """What the chart shows in words, for its alt text: each series' first and last value."""
    parts = []
    for s in series:
        points = [(d, float(v)) for d, v in zip(dates, s.values) if v is not None and _known(v)]
        if not points:
            continue
        (d0, v0), (d1, v1) = points[0], points[-1]
        parts.append(
            f"{s.name} {percent(v0)} on {d0} and {percent(v1)} on {d1}"
            if d0 != d1
            else f"{s.name} {percent(v1)} on {d1}"
        )
    return "; ".join(parts) or "no scores"


def _date_ticks(n: int) -> list[int]:
    """At most about five evenly spread indices of n dates, always the first and the last."""
    step = max(1, -(-n // 5))
    shown = sorted({0, n - 1, *range(0, n, step)})
    if len(shown) > 2 and shown[-1] - shown[-2] < step:
        shown.pop(-2)  # keep the last label clear of its neighbour
    return shown


def likelihood_png(
    dates: Sequence[date],
    series: Sequence[Series],
    *,
    bands: Sequence[tuple[float, float, str, str]] = (),
    top: float = 1.0,
    size: tuple[float, float] = (6.4, 2.8),
    dpi: int = 120,
) -> bytes:
    """Probabilities at each snapshot on a 0–`top` scale, a marked point per value (a line
    joins the values a series has; None and NaN are gaps), the `bands` (low, high, fill,
    label), e.g. the red and yellow risk tiers, shaded behind; one legend below names lines
    and bands. Snapshots are evenly spaced, as in the table of scores beside the chart.

    Drawing takes tens of milliseconds, so the latest charts are kept by their inputs: an
    account page seen again does not draw it again."""
    frozen = tuple(Series(s.name, tuple(s.values), s.colour, tuple(s.dashes)) for s in series)
    return _likelihood_png(tuple(dates), frozen, tuple(bands), top, size, dpi)


@lru_cache(maxsize=128)
def _likelihood_png(
    dates: tuple[date, ...],
    series: tuple[Series, ...],
    bands: tuple[tuple[float, float, str, str], ...],
    top: float,
    size: tuple[float, float],
    dpi: int,
) -> bytes:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.09, 0.31, 0.895, 0.64))
    n = len(dates)
    for low, high, fill, label in bands:
        ax.axhspan(low, high, color=fill, linewidth=0, label=label, zorder=0)
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}%"))
    ax.grid(axis="y", color="#d0d5dd", linewidth=0.8, zorder=1)
    for s in series:
        points = [(i, float(v)) for i, v in enumerate(s.values) if v is not None and _known(v)]
        ax.plot(
            [i for i, _ in points],
            [v for _, v in points],
            color=s.colour,
            linewidth=2.2,
            linestyle=(0, s.dashes) if s.dashes else "-",
            marker="o",
            markersize=3.5,
            label=s.name,
            zorder=3,
        )
    shown = _date_ticks(n) if n else []
    ax.set_xticks(shown)
    ticks = ax.set_xticklabels([dates[i].strftime("%b %Y") for i in shown])
    if n > 1:  # the end labels inside the plot's width
        ticks[0].set_horizontalalignment("left")
        ticks[-1].set_horizontalalignment("right")
        ax.set_xlim(-0.3, n - 0.7)
    else:
        ax.set_xlim(-1, 1)
    ax.set_ylim(0, top)
    ax.tick_params(labelsize=10.5, colors="#475467", length=0, pad=4)
    for side in ax.spines.values():
        side.set_visible(False)
    lines, labels = ax.get_legend_handles_labels()
    order = [*range(len(bands), len(lines)), *range(len(bands))]  # the lines first, then the bands
    ax.legend(
        [lines[i] for i in order],
        [labels[i] for i in order],
        loc="upper left",
        bbox_to_anchor=(-0.08, -0.13),
        ncol=2,
        fontsize=10.5,
        frameon=False,
        handlelength=3,
        columnspacing=1.5,
    )
    return _png(fig, dpi)


def sparkline(values: Sequence[float], top: float = 1.0) -> str:
    """A text sparkline on a fixed 0–`top` scale (one scale, so accounts compare), e.g. "▇▇▅▃"."""
    return "".join(BARS[min(len(BARS) - 1, max(0, int(float(v) / top * len(BARS))))] for v in values)


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
