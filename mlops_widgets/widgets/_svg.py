"""A metric's history as an inline SVG line chart with its threshold line.

Drawn by hand so the panel needs no plotting library (matplotlib alone costs seconds to import
and megabytes to install); the chart goes into an ipywidgets HTML widget.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

OK_COLOR = "#1f77b4"
BAD_COLOR = "#d62728"
LIMIT_COLOR = "#ff7f0e"


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def history_svg(
    metric: str,
    points: Sequence[tuple[str, float]],
    limit: tuple[float, str] | None = None,
    *,
    width: int = 260,
    height: int = 120,
) -> str:
    """An SVG chart of `points` ((time, value), oldest first) with `limit` (value, 'lower'|'upper')
    as a dashed line; points on the wrong side of the limit are drawn red."""
    pad_l, pad_r, pad_t, pad_b = 44, 8, 18, 20
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    values = [float(v) for _, v in points if v is not None and math.isfinite(float(v))]
    title = html.escape(metric)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'class="mlops-history" data-metric="{title}" style="font: 10px sans-serif">',
        f'<text x="{pad_l}" y="12" font-weight="bold">{title}</text>',
        f'<rect x="{pad_l}" y="{pad_t}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    if not values:
        parts.append(f'<text x="{pad_l + 6}" y="{pad_t + plot_h / 2}" fill="#777">no measurements yet</text>')
        parts.append("</svg>")
        return "".join(parts)

    span = values + ([float(limit[0])] if limit else [])
    lo, hi = min(span), max(span)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.08
    lo, hi = lo - margin, hi + margin

    def y(v: float) -> float:
        return pad_t + plot_h * (1 - (v - lo) / (hi - lo))

    n = len(points)

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + 4}" text-anchor="end">{_fmt(hi)}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" text-anchor="end">{_fmt(lo)}</text>')
    if limit:
        value, direction = float(limit[0]), limit[1]
        ly = y(value)
        parts.append(
            f'<line class="mlops-limit" x1="{pad_l}" x2="{pad_l + plot_w}" y1="{ly:.1f}" y2="{ly:.1f}" '
            f'stroke="{LIMIT_COLOR}" stroke-dasharray="4 3"/>'
            f'<text x="{pad_l + plot_w}" y="{ly - 3:.1f}" text-anchor="end" fill="{LIMIT_COLOR}">'
            f"{html.escape(direction)} {_fmt(value)}</text>"
        )
    coords = [(x(i), y(float(v))) for i, (_, v) in enumerate(points)]
    if n > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{OK_COLOR}"/>')
    for (cx, cy), (when, v) in zip(coords, points, strict=True):
        bad = limit is not None and (
            float(v) < float(limit[0]) if limit[1] == "lower" else float(v) > float(limit[0])
        )
        color = BAD_COLOR if bad else OK_COLOR
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}">'
            f"<title>{html.escape(str(when))}: {_fmt(float(v))}</title></circle>"
        )
    first, last = html.escape(str(points[0][0])[:16]), html.escape(str(points[-1][0])[:16])
    parts.append(f'<text x="{pad_l}" y="{height - 6}">{first}</text>')
    if n > 1:
        parts.append(f'<text x="{pad_l + plot_w}" y="{height - 6}" text-anchor="end">{last}</text>')
    parts.append("</svg>")
    return "".join(parts)
