"""A small inline SVG line chart of likelihoods over snapshot dates (no image files, no JS).

Lines differ by colour and by dash pattern, every point has a tooltip, the risk-tier
bands are shaded behind, and the chart carries a text summary for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape

WIDTH, HEIGHT = 640, 230
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 14, 48


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]
    colour: str
    dash: str = ""  # SVG stroke-dasharray


def _x(i: int, n: int) -> float:
    inner = WIDTH - LEFT - RIGHT
    return LEFT + (inner * i / (n - 1) if n > 1 else inner / 2)


def _y(v: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - v)


def _pct(v: float) -> str:
    return f"{v:.0%}"


def summary(dates: list[date], series: list[Series]) -> str:
    parts = []
    for s in series:
        points = [(d, v) for d, v in zip(dates, s.values) if v is not None]
        if not points:
            continue
        (d0, v0), (d1, v1) = points[0], points[-1]
        parts.append(
            f"{s.name} {_pct(v0)} on {d0} and {_pct(v1)} on {d1}" if d0 != d1 else f"{s.name} {_pct(v1)} on {d1}"
        )
    return "; ".join(parts) or "no scores"


def trend_svg(
    dates: list[date],
    series: list[Series],
    *,
    bands: list[tuple[float, float, str, str]] = (),
    title: str = "Likelihood over time",
) -> str:
    """The chart as an <svg> element. `bands`: (low, high, fill, label) shaded ranges, e.g.
    the red and yellow risk tiers of renewal likelihood."""
    n = len(dates)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(summary(dates, series))}</desc>',
    ]
    for low, high, fill, label in bands:
        out.append(
            f'<rect x="{LEFT}" y="{_y(high):.1f}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{_y(low) - _y(high):.1f}" fill="{fill}"><title>{escape(label)}</title></rect>'
        )
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d5dd" stroke-width="1"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_pct(tick)}</text>')
    if n:
        step = max(1, -(-n // 6))
        shown = sorted({0, n - 1, *range(0, n, step)})
        if len(shown) > 2 and shown[-1] - shown[-2] < step:
            shown.pop(-2)  # keep the last label clear of its neighbour
        for i in shown:
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            out.append(
                f'<text x="{_x(i, n):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}" '
                f'class="tick">{escape(dates[i].strftime("%b %Y"))}</text>'
            )
    for s in series:
        points = [(i, v) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{'M' if k == 0 else 'L'}{_x(i, n):.1f},{_y(v):.1f}" for k, (i, v) in enumerate(points))
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(f'<path d="{path}" fill="none" stroke="{s.colour}" stroke-width="2.5"{dash}/>')
        for i, v in points:
            out.append(
                f'<circle cx="{_x(i, n):.1f}" cy="{_y(v):.1f}" r="3.5" fill="{s.colour}">'
                f"<title>{escape(f'{dates[i]}: {s.name} {_pct(v)}')}</title></circle>"
            )
    x = LEFT
    for s in series:  # legend: a line sample with the same dash, then the name
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        y = HEIGHT - 12
        out.append(
            f'<line x1="{x}" x2="{x + 28}" y1="{y - 4}" y2="{y - 4}" stroke="{s.colour}" stroke-width="2.5"'
            f'{dash}/><text x="{x + 34}" y="{y}" class="legend">{escape(s.name)}</text>'
        )
        x += 40 + 8 * len(s.name)
    out.append("</svg>")
    return "".join(out)
