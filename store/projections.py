"""The maintained projection (deal_current), refreshed inside each append's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

# Refold the touched deals from the log. A deal whose every event was retracted gets a row with
# reported = false, so that the table never keeps a state the log no longer supports.
REFRESH_DEAL_CURRENT = """
INSERT OR REPLACE INTO deal_current
SELECT t.deal_id, coalesce(s.reported, false), s.* EXCLUDE (deal_id, reported)
FROM (SELECT unnest($deals::VARCHAR[]) AS deal_id) t
LEFT JOIN deal_states(deals := $deals::VARCHAR[]) s ON s.deal_id = t.deal_id
"""
REBUILD_DEAL_CURRENT = """
INSERT OR REPLACE INTO deal_current
SELECT d.deal_id, coalesce(s.reported, false), s.* EXCLUDE (deal_id, reported)
FROM (SELECT DISTINCT deal_id FROM events WHERE deal_id IS NOT NULL) d
LEFT JOIN deal_states() s ON s.deal_id = d.deal_id
"""


def refresh_projections(
    cur: duckdb.DuckDBPyConnection, deal_ids: Sequence[str], *, after_seq: int
) -> None:
    """Bring the maintained read models up to date for the given deals.

    Call inside the append's transaction, after inserting the new events: every event of the
    transaction has seq > after_seq, and every deal it touches is in deal_ids.
    """
    cur.execute(REFRESH_DEAL_CURRENT, {"deals": list(deal_ids)})


def rebuild_projections(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild every maintained read model from the log (after a bulk import, or to prove it)."""
    cur.execute(REBUILD_DEAL_CURRENT)
