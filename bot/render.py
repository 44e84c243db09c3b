"""Render an Answer as text for the console and the CLI (pure: answer in, string out)."""

from __future__ import annotations

import io
import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from bot.answers import Answer


def render_text(answer: Answer, *, width: int = 110) -> str:
    """A readable plain-text rendering: title, summary, facts, table, notes, sources."""
    out = io.StringIO()
    console = Console(
        file=out, width=width, color_system=None, highlight=False, emoji=False, markup=False
    )
    console.print(answer.title)
    console.print("=" * min(len(answer.title), width))
    if answer.summary:
        console.print(answer.summary)
    if answer.facts:
        name_width = max(len(f.name) for f in answer.facts)
        for fact in answer.facts:
            console.print(f"  {fact.name.ljust(name_width)}  {fact.value}")
    if answer.table and answer.table.rows:
        table = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        numeric = answer.table.numeric or [False] * len(answer.table.columns)
        for column, is_number in zip(answer.table.columns, numeric, strict=False):
            table.add_column(column, justify="right" if is_number else "left", overflow="fold")
        for row in answer.table.rows:
            table.add_row(*row)
        console.print(table)
    for note in answer.notes:
        console.print(f"* {note}")
    if answer.sources:
        console.print("Sources:")
        for source in answer.sources:
            console.print(f"  - {source.title}: {source.url}")
    return out.getvalue().rstrip() + "\n"


def render_json(answer: Answer) -> str:
    """The machine-readable answer: the command's data (its public JSON shape)."""
    return json.dumps(answer.data, indent=2, ensure_ascii=False, default=_default) + "\n"


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
