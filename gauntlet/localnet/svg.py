"""Small self-contained SVG charts (line and stacked area) for the localnet report.

Output is standalone, well-formed XML (it carries its namespace), so it can be
inlined in HTML or saved as ``.svg``. Every piece of text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Distinguishable on white, colour-blind friendly enough (Tableau 10).
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip

WIDTH, HEIGHT = 640, 300
LEGEND_WIDTH = 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 60, 16, 32, 44


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (x, y); non-finite values are skipped
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True)
class Layer:
    """One band of a stacked area chart: its height at each x of the chart."""

    label: str
    values: Sequence[float]
    color: str = PALETTE[0]


@dataclass
class _Frame:
    """Maps data coordinates to pixels inside the plot area."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int = WIDTH
    height: int = HEIGHT
    parts: list[str] = field(default_factory=list)

    def px(self, x: float) -> float:
        lo, hi = self.x_range
        return MARGIN_LEFT + (x - lo) / (hi - lo) * (self.width - MARGIN_LEFT - MARGIN_RIGHT)

    def py(self, y: float) -> float:
        lo, hi = self.y_range
        return (
            self.height
            - MARGIN_BOTTOM
            - (y - lo) / (hi - lo) * (self.height - MARGIN_TOP - MARGIN_BOTTOM)
        )


def _f(v: float) -> str:
    return f"{v:.1f}"


def _finite(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]


def _span(
    values: Sequence[float], pad: float, flat_half: float | None = None
) -> tuple[float, float]:
    """A non-empty [lo, hi] around ``values``, widened by ``pad`` of its length.

    A single value gets ``flat_half`` either side (default: a tenth of itself, or 1).
    """
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi == lo:
        half = flat_half or abs(lo) * 0.1 or 1.0
        return lo - half, hi + half
    extra = (hi - lo) * pad
    return lo - extra, hi + extra


def nice_ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) in [lo, hi]."""
    raw = (hi - lo) / max(count, 1)
    if raw <= 0 or not math.isfinite(raw):
        return [lo]
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    i = first
    while i * step <= hi + step * 1e-9:
        ticks.append(round(i * step, 12))  # 3 * 0.2 is 0.6000000000000001
        i += 1
    return ticks


def _axes(frame: _Frame, title: str, x_label: str, y_label: str, *, x_integer: bool) -> None:
    left, right = MARGIN_LEFT, frame.width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, frame.height - MARGIN_BOTTOM
    p = frame.parts
    p.append(
        f'<text x="{_f((left + right) / 2)}" y="20" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>'
    )
    for y in nice_ticks(*frame.y_range):
        yy = _f(frame.py(y))
        p.append(f'<line x1="{left}" y1="{yy}" x2="{right}" y2="{yy}" stroke="#e5e5e5"/>')
        p.append(f'<text x="{left - 6}" y="{yy}" text-anchor="end" dy="0.32em">{y:.4g}</text>')
    for x in nice_ticks(*frame.x_range, integer=x_integer):
        xx = _f(frame.px(x))
        p.append(f'<line x1="{xx}" y1="{bottom}" x2="{xx}" y2="{bottom + 4}" stroke="#333"/>')
        p.append(f'<text x="{xx}" y="{bottom + 16}" text-anchor="middle">{x:.4g}</text>')
    p.append(
        f'<polyline points="{left},{top} {left},{bottom} {right},{bottom}" '
        f'fill="none" stroke="#333"/>'
    )
    p.append(
        f'<text x="{_f((left + right) / 2)}" y="{frame.height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    p.append(
        f'<text transform="translate(14,{_f((top + bottom) / 2)}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )


def _legend(frame: _Frame, entries: Sequence[tuple[str, str, bool]]) -> None:
    """Entries (label, colour, dashed) in a column right of the plot."""
    x = frame.width + 8
    for i, (label, color, dashed) in enumerate(entries):
        y = MARGIN_TOP + 6 + i * 18
        dash = ' stroke-dasharray="6 3"' if dashed else ""
        frame.parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{escape(color)}" '
            f'stroke-width="2.5"{dash}/>'
            f'<text x="{x + 28}" y="{y}" dy="0.32em">{escape(label)}</text>'
        )


def _svg(frame: _Frame, legend_rows: int) -> str:
    total_height = max(frame.height, MARGIN_TOP + 18 * legend_rows + 12)
    total_width = frame.width + (LEGEND_WIDTH if legend_rows else 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{total_height}" '
        f'viewBox="0 0 {total_width} {total_height}" font-family="sans-serif" font-size="11" '
        f'role="img">' + "".join(frame.parts) + "</svg>"
    )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    x_integer: bool = True,
) -> str:
    """One polyline (with a dot per point, its value as a tooltip) per series, legend at right."""
    points = [pt for s in series for pt in _finite(s.points)]
    frame = _Frame(
        x_range=_span([x for x, _ in points], 0.0, flat_half=1.0),
        y_range=y_range or _span([y for _, y in points], 0.05),
    )
    _axes(frame, title, x_label, y_label, x_integer=x_integer)
    for s in series:
        pts = _finite(s.points)
        color = escape(s.color)
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        coords = " ".join(f"{_f(frame.px(x))},{_f(frame.py(y))}" for x, y in pts)
        if len(pts) > 1:
            frame.parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
            )
        for x, y in pts:
            frame.parts.append(
                f'<circle cx="{_f(frame.px(x))}" cy="{_f(frame.py(y))}" r="2.5" fill="{color}">'
                f"<title>{escape(s.label)}: {x:g}, {y:.4g}</title></circle>"
            )
    _legend(frame, [(s.label, s.color, s.dashed) for s in series])
    return _svg(frame, len(series))


def stacked_chart(
    xs: Sequence[float],
    layers: Sequence[Layer],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
) -> str:
    """Bands stacked bottom-up in ``layers`` order, each polygon between its base and top."""
    if any(len(layer.values) != len(xs) for layer in layers):
        raise ValueError("every layer needs one value per x")
    tops = [sum(layer.values[i] for layer in layers) for i in range(len(xs))]
    frame = _Frame(
        x_range=_span(list(xs), 0.0, flat_half=1.0),
        y_range=y_range or (0.0, _span(tops + [0.0], 0.05)[1]),
    )
    _axes(frame, title, x_label, y_label, x_integer=True)
    base = [0.0] * len(xs)
    for layer in layers:
        top = [b + v for b, v in zip(base, layer.values, strict=True)]
        if len(xs) == 1:  # one sample: a bar a little wide, so it shows
            half = 0.3
            outline = [(xs[0] - half, top[0]), (xs[0] + half, top[0])]
            outline += [(xs[0] + half, base[0]), (xs[0] - half, base[0])]
        else:
            outline = list(zip(xs, top, strict=True)) + list(zip(xs, base, strict=True))[::-1]
        coords = " ".join(f"{_f(frame.px(x))},{_f(frame.py(y))}" for x, y in outline)
        frame.parts.append(
            f'<polygon points="{coords}" fill="{escape(layer.color)}" fill-opacity="0.75" '
            f'stroke="{escape(layer.color)}"><title>{escape(layer.label)}</title></polygon>'
        )
        base = top
    _legend(frame, [(layer.label, layer.color, False) for layer in layers])
    return _svg(frame, len(layers))
