"""A metric's history as an inline SVG line chart: time on the x-axis, labelled ticks, each
point's time and value on hover, the threshold dashed and labelled above the plot (never over
the data).

Drawn by hand so the panel needs no plotting library (matplotlib alone costs seconds to import
and megabytes to install). Colours and fonts come from the panel's stylesheet (theme variables,
see _style.py); the chart scales to the width it is given (viewBox).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime

WIDTH, HEIGHT = 360, 170
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 34, 30


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


def _violates(value: float, limit: tuple[float, str] | None) -> bool:
    if limit is None:
        return False
    return value < float(limit[0]) if limit[1] == "lower" else value > float(limit[0])


def history_svg(
    metric: str,
    points: Sequence[tuple[str, float]],
    limit: tuple[float, str] | None = None,
    *,
    anchor: str = "",
) -> str:
    """An SVG chart of `points` ((ISO time, value), oldest first) with `limit` (value,
    'lower'|'upper'); points on the wrong side of the limit take the error colour. `anchor`:
    the element id (the status summary links to it)."""
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    data = [(_time(t), float(v)) for t, v in points if v is not None and math.isfinite(float(v))]
    title = html.escape(metric)
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"{ident} '
        f'class="mlops-history" data-metric="{title}" role="img" aria-label="{title} history">',
        f'<text class="mlops-chart-title" x="{PAD_L}" y="14">{title}</text>',
    ]
    if limit is not None:
        parts.append(
            f'<text class="mlops-limit-label" x="{WIDTH - PAD_R}" y="28" text-anchor="end">'
            f"threshold: {html.escape(limit[1])} {_fmt(float(limit[0]))}</text>"
        )
    parts.append(f'<rect class="mlops-frame" x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}"/>')
    if not data:
        parts.append(f'<text x="{PAD_L + 8}" y="{PAD_T + plot_h / 2}">no measurements yet</text></svg>')
        return "".join(parts)

    values = [v for _, v in data] + ([float(limit[0])] if limit else [])
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.08
    lo, hi = lo - margin, hi + margin

    def y(v: float) -> float:
        return PAD_T + plot_h * (1 - (v - lo) / (hi - lo))

    times = [t.timestamp() for t, _ in data if t is not None]
    by_time = len(times) == len(data) and max(times) > min(times)
    t0, t1 = (min(times), max(times)) if by_time else (0.0, float(max(len(data) - 1, 1)))

    def x(i: int) -> float:
        pos = data[i][0].timestamp() if by_time else float(i)  # type: ignore[union-attr]
        return PAD_L + (plot_w * (pos - t0) / (t1 - t0) if len(data) > 1 else plot_w / 2)

    for v in (lo + margin, (lo + hi) / 2, hi - margin):  # y ticks: data range and middle
        parts.append(
            f'<line class="mlops-grid" x1="{PAD_L}" x2="{PAD_L + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    ticks = [0, len(data) - 1] if len(data) > 1 else [0]
    for i, anchor_pos in zip(ticks, ("start", "end"), strict=False):
        when = data[i][0]
        label = when.strftime("%m-%d %H:%M") if when else f"#{i + 1}"
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor_pos if len(data) > 1 else "middle"}">'
            f"{label}</text>"
        )
    if limit is not None:
        ly = y(float(limit[0]))
        parts.append(
            f'<line class="mlops-limit" x1="{PAD_L}" x2="{PAD_L + plot_w}" y1="{ly:.1f}" y2="{ly:.1f}"/>'
        )
    coords = [(x(i), y(v)) for i, (_, v) in enumerate(data)]
    if len(coords) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline class="mlops-line" points="{path}"/>')
    for (cx, cy), (when, v) in zip(coords, data, strict=True):
        bad = " mlops-bad" if _violates(v, limit) else ""
        stamp = when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""
        parts.append(
            f'<circle class="mlops-point{bad}" cx="{cx:.1f}" cy="{cy:.1f}" r="3.5">'
            f"<title>{html.escape(stamp)}: {title} = {v:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
