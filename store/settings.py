"""DuckDB settings changed for a while and put back (an import's memory limit, a snapshot's
hold on automatic checkpoints)."""

from __future__ import annotations

import duckdb


class DuckDBSettings:
    """DuckDB settings changed for a while, and put back. They are global (the whole database,
    every cursor), so they go through a cursor of their own, outside any transaction of the
    caller's: they can be put back after it failed."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur
        self._saved: dict[str, str] = {}

    def set(self, name: str, value: str) -> None:
        if name not in self._saved:
            self._saved[name] = self._current(name)
        self._cur.execute(f"SET {name} = '{value}'")

    def restore(self, *names: str) -> None:
        """Put back the named settings (all when none is named)."""
        for name in names or tuple(self._saved):
            if name in self._saved:
                saved = self._saved.pop(name)
                # RESET when it gives the value back: a limit set again from its rounded text
                # would shrink by 0.1 GiB at every import.
                self._cur.execute(f"RESET {name}")
                if self._current(name) != saved:
                    self._cur.execute(f"SET {name} = '{saved}'")

    def _current(self, name: str) -> str:
        # fetchall, not fetchone: a result left unread keeps its transaction open, and a
        # transaction older than the import's commit stops DuckDB from checkpointing after it
        rows = self._cur.execute("SELECT current_setting($name)", {"name": name}).fetchall()
        return str(rows[0][0])
