"""Baselines for the position figures: what the typed columns and the maintained table beat.

Both compute every lab's MW by bucket and committed / pipeline dollars "now" (links and
providers left out, so they do less than lab_positions does).
"""

from __future__ import annotations

from typing import Any

import duckdb

SELECT_ROWS = """
SELECT deal_id, type, event_id, target_event_id, lab, kind, status, capacity_mw, value_usd,
       online_mw
FROM events WHERE deal_id IS NOT NULL ORDER BY occurred_at, seq
"""


def _bucket(
    totals: dict[str, float],
    status: str | None,
    kind: str | None,
    mw: float,
    online: float,
    usd: float,
) -> None:
    if status in ("shelved", "cancelled") or status is None:
        return
    op = min(online, mw) if online else (mw if status == "operational" else 0.0)
    rest = mw - op
    totals["operational"] += op
    if status in ("signed", "operational"):
        totals["contracted"] += rest
    elif status in ("loi", "negotiating"):
        totals["pipeline"] += rest
    else:
        totals["rumored"] += rest
    backing = kind in ("investment_for_compute", "guarantee")
    if status in ("signed", "operational") and not backing:
        totals["committed_usd"] += usd
    elif status in ("loi", "negotiating") and not backing:
        totals["pipeline_usd"] += usd


def python_fold(cur: duckdb.DuckDBPyConnection) -> dict[str, dict[str, float]]:
    """Fetch every deal event (typed columns) and fold them in Python, event by event."""
    rows = cur.execute(SELECT_ROWS).fetchall()
    retracted = {r[3] for r in rows if r[1] == "EventRetracted"}
    deals: dict[str, dict[str, Any]] = {}
    for deal_id, type_, event_id, _t, lab, kind, status, mw, usd, online in rows:
        if type_ == "EventRetracted" or event_id in retracted:
            continue
        d = deals.setdefault(deal_id, {"online": 0.0})
        for key, value in (
            ("lab", lab),
            ("kind", kind),
            ("status", status),
            ("mw", mw),
            ("usd", usd),
        ):
            if value is not None:
                d[key] = value
        if type_ == "CapacityCameOnline" and online:
            d["online"] += online
        if type_ == "DealReported":
            d["reported"] = True
    out: dict[str, dict[str, float]] = {}
    for d in deals.values():
        if not d.get("reported"):
            continue
        totals = out.setdefault(
            d["lab"],
            dict.fromkeys(
                (
                    "operational",
                    "contracted",
                    "pipeline",
                    "rumored",
                    "committed_usd",
                    "pipeline_usd",
                ),
                0.0,
            ),
        )
        _bucket(
            totals,
            d.get("status"),
            d.get("kind"),
            d.get("mw") or 0.0,
            d["online"],
            d.get("usd") or 0.0,
        )
    return out


# The same fold in SQL, reading every field from the JSON payload instead of typed columns.
JSON_SQL = """
WITH ev AS (
    SELECT substr(stream_id, 6) AS deal_id, type, event_id, occurred_at, seq,
           payload ->> 'lab' AS lab, payload ->> 'kind' AS kind, payload ->> 'status' AS status,
           (payload ->> 'capacity_mw')::DOUBLE AS capacity_mw,
           (payload ->> 'value_usd')::DOUBLE AS value_usd,
           (payload ->> 'mw')::DOUBLE AS mw,
           (payload ->> 'event_id') AS target
    FROM events WHERE stream_id LIKE 'deal:%'
), standing AS (
    SELECT * FROM ev
    WHERE type <> 'EventRetracted'
      AND event_id::VARCHAR NOT IN (SELECT target FROM ev WHERE type = 'EventRetracted')
), st AS (
    SELECT deal_id,
           bool_or(type = 'DealReported') AS reported,
           arg_max(lab, (occurred_at, seq)) FILTER (WHERE lab IS NOT NULL) AS lab,
           arg_max(kind, (occurred_at, seq)) FILTER (WHERE kind IS NOT NULL) AS kind,
           arg_max(status, (occurred_at, seq)) FILTER (WHERE status IS NOT NULL) AS status,
           coalesce(arg_max(capacity_mw, (occurred_at, seq))
               FILTER (WHERE capacity_mw IS NOT NULL), 0) AS mw,
           coalesce(arg_max(value_usd, (occurred_at, seq))
               FILTER (WHERE value_usd IS NOT NULL), 0) AS usd,
           coalesce(sum(mw) FILTER (WHERE type = 'CapacityCameOnline'), 0) AS online
    FROM standing GROUP BY deal_id
), b AS (
    SELECT *, CASE WHEN online > 0 THEN least(online, mw)
                   WHEN status = 'operational' THEN mw ELSE 0 END AS op
    FROM st WHERE reported AND status NOT IN ('shelved', 'cancelled')
)
SELECT lab,
       sum(op) AS operational,
       sum(CASE WHEN status IN ('signed', 'operational') THEN mw - op ELSE 0 END) AS contracted,
       sum(CASE WHEN status IN ('loi', 'negotiating') THEN mw - op ELSE 0 END) AS pipeline,
       sum(CASE WHEN status = 'rumored' THEN mw - op ELSE 0 END) AS rumored,
       sum(CASE WHEN status IN ('signed', 'operational')
                 AND kind NOT IN ('investment_for_compute', 'guarantee') THEN usd ELSE 0 END)
           AS committed_usd,
       sum(CASE WHEN status IN ('loi', 'negotiating')
                 AND kind NOT IN ('investment_for_compute', 'guarantee') THEN usd ELSE 0 END)
           AS pipeline_usd
FROM b GROUP BY lab
"""
