"""`computewatch sql`: one read-only query through the sandbox, printed as a table or CSV."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from bot.errors import UserInputError
from bot.services import open_services
from store.sandbox import QueryResult, SqlSandbox, to_csv


def render_result(result: QueryResult) -> str:
    console = Console(
        file=None,
        record=True,
        width=160,
        color_system=None,
        markup=False,
        highlight=False,
        emoji=False,
    )
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


def query_running_bot(api_url: str, query: str) -> QueryResult | None:
    """Ask a running bot's API (it holds the database for writing); None when none answers."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=0.5) as response:
            if response.status != 200:
                return None
    except (OSError, ValueError):
        return None
    request = urllib.request.Request(
        f"{api_url}/sql",
        data=json.dumps({"query": query}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        raise UserInputError(f"{detail}") from None
    return QueryResult(
        columns=body["columns"],
        types=body["types"],
        rows=[tuple(r) for r in body["rows"]],
        truncated=body["truncated"],
        elapsed_ms=body["elapsed_ms"],
    )


def run_sql(
    db: Path,
    query: str,
    *,
    max_rows: int,
    timeout_s: float,
    as_csv: bool,
    seed: bool,
    api_url: str | None = None,
) -> int:
    """One query: through the running bot's API when there is one, else on the file itself."""
    result = query_running_bot(api_url, query) if api_url else None
    if result is None:
        if not db.exists():
            open_services(db, seed=seed).close()  # the embedded default: create and seed it
        with SqlSandbox(db, timeout_s=timeout_s, max_rows=max_rows) as sandbox:
            result = sandbox.run(query)
    sys.stdout.write(to_csv(result) if as_csv else render_result(result))
    return 0
