"""Horizontal bar charts drawn on the server as SVG (no script, no inline style: the CSP forbids
both), for the dashboard. This module only computes the geometry; the template
``backoffice/_charts.html`` draws it, and every chart is followed by a table of the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

WIDTH = 720
LABEL_WIDTH = 250  # left column: the label of each group
BAR_AREA = 360  # the longest bar
BAR_HEIGHT = 14
BAR_GAP = 3
GROUP_GAP = 12
TOP = 8
LEGEND_HEIGHT = 22
# One colour per series (contrast ≥ 4.5:1 on white), also shown in the legend.
COLOURS = ("#0b5ed7", "#146c43", "#6f42c1", "#b02a37")


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: float
    height: int
    colour: str
    value_text: str  # written after the bar
    text_x: float
    text_y: int


@dataclass(frozen=True)
class Group:
    label: str
    label_y: int
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class LegendItem:
    name: str
    colour: str
    x: int
    y: int


@dataclass(frozen=True)
class BarChart:
    title: str
    width: int
    height: int
    label_width: int
    groups: tuple[Group, ...]
    legend: tuple[LegendItem, ...]


def _short(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(title: str, series: Sequence[str], groups: Sequence[tuple[str, Sequence[Decimal | int]]],
              text) -> BarChart:
    """``groups``: (label, one value per series); ``text`` formats a value (``12 345,00 €``). The
    bars share one scale: the largest value is the longest bar."""
    largest = max((Decimal(v) for _, values in groups for v in values), default=Decimal(0))
    legend_rows = LEGEND_HEIGHT if len(series) > 1 else 0
    y = TOP + legend_rows
    drawn = []
    for label, values in groups:
        top = y
        bars = []
        for index, value in enumerate(values):
            width = float(Decimal(value) / largest * BAR_AREA) if largest > 0 else 0.0
            bars.append(Bar(x=LABEL_WIDTH, y=y, width=round(width, 1), height=BAR_HEIGHT,
                            colour=COLOURS[index % len(COLOURS)], value_text=text(value),
                            text_x=round(LABEL_WIDTH + width + 6, 1), text_y=y + BAR_HEIGHT - 3))
            y += BAR_HEIGHT + BAR_GAP
        middle = (top + y - BAR_GAP) // 2 + 4
        drawn.append(Group(label=_short(label), label_y=middle, bars=tuple(bars)))
        y += GROUP_GAP
    legend = tuple(LegendItem(name=name, colour=COLOURS[i % len(COLOURS)], x=LABEL_WIDTH + i * 150, y=TOP)
                   for i, name in enumerate(series)) if len(series) > 1 else ()
    return BarChart(title=title, width=WIDTH, height=y + TOP, label_width=LABEL_WIDTH,
                    groups=tuple(drawn), legend=legend)
