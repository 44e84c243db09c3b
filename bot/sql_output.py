"""`computewatch sql`: one read-only query through the sandbox, printed as a table or CSV."""

from __future__ import annotations

import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from bot.services import open_services
from store.sandbox import QueryResult, SqlSandbox, to_csv


def render_result(result: QueryResult) -> str:
    console = Console(file=None, record=True, width=160, color_system=None, markup=False,
                      highlight=False, emoji=False)
    table = Table(box=box.SIMPLE_HEAD)
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    with console.capture() as capture:
        console.print(table)
        more = " (more rows were cut; raise --max-rows)" if result.truncated else ""
        console.print(f"{len(result.rows)} row(s) in {result.elapsed_ms:.0f} ms{more}")
    return capture.get()


def run_sql(db: Path, query: str, *, max_rows: int, timeout_s: float, as_csv: bool,
            seed: bool) -> int:
    if not db.exists():
        open_services(db, seed=seed).close()  # the embedded default: create and seed it first
    with SqlSandbox(db, timeout_s=timeout_s, max_rows=max_rows) as sandbox:
        result = sandbox.run(query)
    sys.stdout.write(to_csv(result) if as_csv else render_result(result))
    return 0
