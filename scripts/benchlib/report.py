"""Figures, their goals, and the two ways to show them: a text table and a JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Figure", "Goal", "render_table", "write_json"]

Status = Literal["met", "MISSED", "info", "ERROR"]


@dataclass(frozen=True)
class Goal:
    """``value op bound``: ``>=`` for rates and ratios, ``<=`` for latencies."""

    op: Literal[">=", "<="]
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.bound:g}"


@dataclass(frozen=True)
class Figure:
    """One measured number; ``detail`` holds the raw figures behind a ratio."""

    key: str
    section: str
    name: str
    value: float | None
    unit: str
    goal: Goal | None = None
    detail: str = ""
    error: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None or self.value is None:
            return "ERROR"
        if self.goal is None:
            return "info"
        return "met" if self.goal.met(self.value) else "MISSED"

    def shown_value(self) -> str:
        if self.value is None:
            return "-"
        if self.unit == "x":
            return f"{self.value:.3f} x"
        return f"{self.value:,.1f} {self.unit}"

    def shown_goal(self) -> str:
        if self.goal is None:
            return "-"
        return f"{self.goal}{' x' if self.unit == 'x' else ' ' + self.unit}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["goal"] = None if self.goal is None else asdict(self.goal)
        out["status"] = self.status
        return out


_COLUMNS = (("#", 4), ("figure", 52), ("value", 14), ("goal", 12), ("status", 6))


def _row(cells: tuple[str, ...]) -> str:
    parts = [cell.ljust(width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True)]
    return "  ".join(parts).rstrip()


def render_table(figures: list[Figure]) -> str:
    """A fixed-width table; each figure's detail (or error) on an indented line below."""
    header = _row(tuple(name for name, _ in _COLUMNS))
    lines = [header, "-" * len(header)]
    for fig in figures:
        cells = (fig.key, fig.name, fig.shown_value(), fig.shown_goal(), fig.status)
        lines.append(_row(cells))
        note = fig.error if fig.error is not None else fig.detail
        lines.extend(f"{'':6}{line}" for line in note.splitlines())
    return "\n".join(lines)


def write_json(path: Path, figures: list[Figure], meta: dict[str, Any]) -> None:
    document = {"meta": meta, "figures": [fig.to_json() for fig in figures]}
    path.write_text(json.dumps(document, indent=2) + "\n")
