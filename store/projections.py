"""The maintained read models (deal_state, deal_link_events; store/sql/004), brought up to date
with the log after appends, and rebuilt from the log on demand.

An append commits its events alone; the read models catch up in a transaction of their own
that folds every event after the checkpoint (store/sql/006) at once (EventStore.catch_up):
before a read, when the writer is idle, before a close. Many appends then cost one refresh, and
an append does not wait for the fold.

A refresh costs what the new events touch, not the size of the log. It reads the new events
(seq > the checkpoint: zone maps skip the rest of the log) and the deal_state rows of the deals
they touch (primary-key lookups), then takes one of two paths:

* the common case (a few deals, none linked to another, events in valid-time order, no link and
  no retraction among them) is folded here in Python onto the rows, and each row is written with
  one UPDATE: planning the SQL fold and counting macros costs 10-30 ms a statement, far more than
  the work itself. The fold and the counting rules are those of store/sql/004 (deal_fold,
  deal_counting_of) for a deal without links; tests check that the maintained rows equal a
  rebuild after random histories.
* anything else goes through SQL: the new events are folded onto the rows (a deal refolds from
  its own events, by seq, when an event is back-dated before its latest one or retracts one of
  its events), links are recorded, and the deals within two links of a changed one are recounted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

# What a refresh reads of the new events (the events of the append: seq > $after).
NEW_EVENT_FIELDS = (
    "deal_id",
    "type",
    "lab",
    "kind",
    "status",
    "capacity_mw",
    "value_usd",
    "chips",
    "term_years",
    "online_from",
    "location",
    "title",
    "online_mw",
    "counterparties",
    "occurred_at",
    "seq",
    "link_relation",
    "link_other",
    "target_event_id",
)
SELECT_NEW_EVENTS = (
    "SELECT "
    + ", ".join(NEW_EVENT_FIELDS)
    + ", CASE WHEN source_url IS NOT NULL THEN hash(source_url) END AS source_hash "
    "FROM events WHERE seq > $after AND deal_id IS NOT NULL ORDER BY seq"
)
# The rows of the touched deals as they stand before the append.
SELECT_DEAL_ROWS = "SELECT * FROM deal_state WHERE list_contains($deals::VARCHAR[], deal_id)"
SELECT_LINKED = (
    "SELECT deal_id, linked FROM deal_state WHERE list_contains($deals::VARCHAR[], deal_id)"
)
# Links that a new retraction withdraws: both of their deals are recounted.
SELECT_RETRACTED_LINKS = """
SELECT deal_id, other_deal FROM deal_link_events
WHERE list_contains($targets::UUID[], event_id) AND relation <> 'overlaps'
"""
SELECT_DEAL_COUNT = "SELECT count(*) FROM deal_state"
# The seq up to which the read models have folded the log (store/sql/006).
SELECT_CHECKPOINT = "SELECT seq FROM projection_checkpoint WHERE projection = 'deal_state'"
UPDATE_CHECKPOINT = "UPDATE projection_checkpoint SET seq = $seq WHERE projection = 'deal_state'"
SET_CHECKPOINT_TO_HEAD = (
    "UPDATE projection_checkpoint SET seq = (SELECT coalesce(max(seq), 0) FROM events) "
    "WHERE projection = 'deal_state'"
)
INSERT_DEAL_ROW = "INSERT INTO deal_state BY NAME SELECT {values}"
UPDATE_DEAL_ROW = "UPDATE deal_state SET {assignments} WHERE deal_id = $deal_id"

# New and refolded deal states (the counting columns are kept as they were: UPDATE_COUNTS
# follows). A deal in $refold is folded again from all of its events ($seqs holds them); any
# other deal has the fold of its new events (seq > $after) put onto its row: the latest non-null
# value wins (every new event is later in valid time than the row's, so it is the latest),
# online MW add up, a full list of counterparties replaces the row's and a join adds to it.
# `linked` gains the deals that new part_of / supersedes links join to it either way.
UPSERT_DEAL_STATE = """
INSERT OR REPLACE INTO deal_state
WITH d AS (
    SELECT deal_id, list_contains($refold::VARCHAR[], deal_id) AS refold
    FROM (SELECT unnest($deals::VARCHAR[]) AS deal_id)
), o AS (
    SELECT * FROM deal_state WHERE list_contains($deals::VARCHAR[], deal_id)
), a AS (
    SELECT * FROM deal_fold(deals := $deals::VARCHAR[], after := $after)
), f AS (
    SELECT * FROM deal_fold(deals := $refold::VARCHAR[], seqs := $seqs::BIGINT[])
), links AS (
    SELECT deal_id, list(other ORDER BY seq) AS linked
    FROM (SELECT deal_id, link_other AS other, seq FROM events
          WHERE seq > $after AND type = 'DealsLinked' AND link_relation <> 'overlaps'
          UNION ALL
          SELECT link_other, deal_id, seq FROM events
          WHERE seq > $after AND type = 'DealsLinked' AND link_relation <> 'overlaps')
    GROUP BY deal_id
), m AS (
    -- the row before, with the fold of the new events put on it
    SELECT
        d.deal_id,
        coalesce(o.reported, false) OR coalesce(a.reported, false) AS reported,
        coalesce(a.lab, o.lab) AS lab,
        coalesce(a.kind, o.kind) AS kind,
        coalesce(a.status, o.status) AS status,
        coalesce(a.capacity_mw, o.capacity_mw) AS capacity_mw,
        coalesce(a.value_usd, o.value_usd) AS value_usd,
        coalesce(a.chips, o.chips) AS chips,
        coalesce(a.term_years, o.term_years) AS term_years,
        coalesce(a.online_from, o.online_from) AS online_from,
        coalesce(a.location, o.location) AS location,
        coalesce(a.title, o.title) AS title,
        CASE WHEN a.online_mw IS NULL THEN o.online_mw
             ELSE coalesce(o.online_mw, 0) + a.online_mw END AS online_mw,
        CASE WHEN a.events IS NULL THEN o.online_reports
             ELSE coalesce(o.online_reports, 0) + a.online_reports END AS online_reports,
        CASE WHEN a.events IS NULL THEN o.counterparties
             WHEN a.last_list IS NOT NULL THEN a.counterparties
             ELSE distinct_in_order(list_concat(
                 coalesce(o.counterparties, []),
                 coalesce(flatten(list_transform(list_sort(a.joined), lambda j: j.cps)), [])))
        END AS counterparties,
        least(o.first_reported_at, a.first_reported_at) AS first_reported_at,
        greatest(o.last_event_at, a.last_event_at) AS last_event_at,
        CASE WHEN a.events IS NULL THEN o.events
             ELSE coalesce(o.events, 0) + a.events END AS events,
        CASE WHEN a.events IS NULL THEN o.source_hashes
             ELSE list_distinct(list_concat(coalesce(o.source_hashes, []), a.source_hashes))
        END AS source_hashes,
        greatest(o.last_seq, a.last_seq) AS last_seq
    FROM d LEFT JOIN o USING (deal_id) LEFT JOIN a USING (deal_id)
    WHERE NOT d.refold
)
SELECT
    d.deal_id,
    CASE WHEN d.refold THEN coalesce(f.reported, false) ELSE m.reported END,
    CASE WHEN d.refold THEN f.lab ELSE m.lab END,
    CASE WHEN d.refold THEN f.kind ELSE m.kind END,
    CASE WHEN d.refold THEN f.status ELSE m.status END,
    CASE WHEN d.refold THEN f.capacity_mw ELSE m.capacity_mw END,
    CASE WHEN d.refold THEN f.value_usd ELSE m.value_usd END,
    CASE WHEN d.refold THEN f.chips ELSE m.chips END,
    CASE WHEN d.refold THEN f.term_years ELSE m.term_years END,
    CASE WHEN d.refold THEN f.online_from ELSE m.online_from END,
    CASE WHEN d.refold THEN f.location ELSE m.location END,
    CASE WHEN d.refold THEN f.title ELSE m.title END,
    CASE WHEN d.refold THEN f.online_mw ELSE m.online_mw END,
    CASE WHEN d.refold THEN f.online_reports ELSE m.online_reports END,
    CASE WHEN d.refold THEN f.counterparties ELSE m.counterparties END,
    CASE WHEN d.refold THEN f.first_reported_at ELSE m.first_reported_at END,
    CASE WHEN d.refold THEN f.last_event_at ELSE m.last_event_at END,
    CASE WHEN d.refold THEN f.events ELSE m.events END,
    CASE WHEN d.refold THEN f.sources ELSE len(m.source_hashes) END,
    CASE WHEN d.refold THEN f.last_seq ELSE m.last_seq END,
    coalesce(o.deal_lab, a.deal_lab),
    list_concat(coalesce(o.seqs, []), coalesce(a.event_seqs, [])),
    CASE WHEN d.refold THEN f.source_hashes ELSE m.source_hashes END,
    distinct_in_order(list_concat(coalesce(o.linked, []), coalesce(links.linked, []))),
    o.* EXCLUDE (deal_id, reported, lab, kind, status, capacity_mw, value_usd, chips, term_years,
                 online_from, location, title, online_mw, online_reports, counterparties,
                 first_reported_at, last_event_at, events, sources, last_seq, deal_lab, seqs,
                 source_hashes, linked)
FROM d
LEFT JOIN o USING (deal_id)
LEFT JOIN a USING (deal_id)
LEFT JOIN links USING (deal_id)
LEFT JOIN f USING (deal_id)
LEFT JOIN m USING (deal_id)
"""

# New DealsLinked events, and the retraction time of links retracted by new events.
INSERT_NEW_LINKS = """
INSERT INTO deal_link_events
SELECT e.event_id, e.seq, e.deal_id, e.lab, e.link_relation, e.link_other, o.deal_lab,
       e.occurred_at, e.recorded_at, e.source_url, NULL
FROM events e
LEFT JOIN (SELECT deal_id, deal_lab FROM deal_state
           WHERE list_contains($others::VARCHAR[], deal_id)) o ON o.deal_id = e.link_other
WHERE e.seq > $after AND e.type = 'DealsLinked'
ORDER BY e.seq  -- see CREATE_AROUND
"""
RETRACT_LINKS = """
INSERT OR REPLACE INTO deal_link_events
SELECT l.* REPLACE (r.recorded_at AS retracted_at)
FROM (SELECT * FROM deal_link_events WHERE list_contains($targets::UUID[], event_id)) l
JOIN (SELECT target_event_id, recorded_at FROM events
      WHERE seq > $after AND type = 'EventRetracted') r ON r.target_event_id = l.event_id
"""

# The counting columns of $recount, from the states of $around (the deals within two links).
COUNT_COLUMNS = (
    "superseded_by",
    "parent_deal",
    "capacity_in_parent",
    "value_in_parent",
    "chips_in_parent",
    "excluded",
    "counted_mw",
    "counted_usd",
    "counted_chips",
    "operational_mw",
    "contracted_mw",
    "pipeline_mw",
    "rumored_mw",
    "committed_usd",
    "pipeline_usd",
    "backing_usd",
    "suppliers",
)
# The states of $around go to a temporary table first, which the counting reads twice (read
# from deal_state itself, the second read lost the index: a scan of the table, 100 ms at 10M).
# ORDER BY: DuckDB 2.0 fails with an internal error ("batch index ... is present in multiple
# collections") when CREATE TABLE AS or INSERT reads by index a table that the transaction has
# changed; a sort in between avoids it.
CREATE_AROUND = (
    "CREATE OR REPLACE TEMP TABLE refresh_states AS "
    "SELECT * FROM deal_current WHERE list_contains($around::VARCHAR[], deal_id) ORDER BY deal_id"
)
UPDATE_COUNTS = (
    "UPDATE deal_state SET "
    + ", ".join(f"{c} = n.{c}" for c in COUNT_COLUMNS)
    + " FROM (SELECT * FROM deal_counts_of('refresh_states', $recount::VARCHAR[])) n"
    " WHERE deal_state.deal_id = n.deal_id"
)
DROP_AROUND = "DROP TABLE temp.refresh_states"

# Rebuild every maintained table from the log; in this order: each reads the ones before it.
# Each table is made whole (CREATE TABLE AS) and then keyed: an index built once over all rows
# costs a fraction of keeping it up to date row by row. (An empty copy filled by INSERT is no
# better, and DuckDB 2.0 then plans later reads in the same transaction from the empty copy's
# statistics: they returned no rows.) The states go to a temporary table first, which the
# counting reads twice.
REBUILD = """
CREATE OR REPLACE TEMP TABLE rebuilt_states AS SELECT * FROM rebuilt_deal_states();
CREATE OR REPLACE TABLE deal_link_events AS
SELECT * FROM rebuilt_deal_link_events('rebuilt_states');
ALTER TABLE deal_link_events ADD PRIMARY KEY (event_id);
CREATE INDEX deal_link_events_deal ON deal_link_events (deal_id);
CREATE OR REPLACE TABLE deal_state AS SELECT * FROM deal_state_rows('rebuilt_states');
DROP TABLE temp.rebuilt_states;
ALTER TABLE deal_state ADD PRIMARY KEY (deal_id);
"""

# A refresh that touches more deals than this share of the table rebuilds instead: folding a large
# part of the log at once is cheaper than merging it row by row into an indexed table.
REBUILD_SHARE = 0.2
REBUILD_MIN_DEALS = 5_000
# Up to this many deals the common case is folded in Python, one UPDATE a deal; beyond, one SQL
# statement for all of them is cheaper.
PYTHON_FOLD_MAX_DEALS = 16

# The rules of deal_fold and deal_counting_of (store/sql/004) that the Python fold follows.
FIELDS_SET_BY = {
    "kind": ("DealReported", "DealTermsRevised"),
    "status": ("DealReported", "DealStatusChanged"),
    "capacity_mw": ("DealReported", "DealTermsRevised"),
    "value_usd": ("DealReported", "DealTermsRevised"),
    "chips": ("DealReported", "DealTermsRevised"),
    "term_years": ("DealReported", "DealTermsRevised"),
    "online_from": ("DealReported", "DealTermsRevised"),
    "location": ("DealReported", "DealTermsRevised"),
    "title": ("DealReported",),
}
ENDED = ("shelved", "cancelled")
COMMITTED = ("signed", "operational")
PIPELINE = ("loi", "negotiating")
BACKING_KINDS = ("investment_for_compute", "guarantee")
SUPPLIER_ROLES = ("provider", "landlord", "chip_supplier")


@dataclass
class _Plan:
    """What one refresh touches, and how."""

    new: list[dict[str, Any]]
    rows: dict[str, dict[str, Any]]  # deal_state rows before the append, by deal
    deals: list[str] = field(default_factory=list)  # every deal whose row is written
    refold: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  # all events of the refolded deals
    link_others: list[str] = field(default_factory=list)
    retraction_targets: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # whose counting inputs changed


def refresh_projections(cur: duckdb.DuckDBPyConnection, *, after_seq: int) -> None:
    """Bring the maintained read models up to date with the events after seq `after_seq`.

    Call inside a transaction (the catch-up's, or an import's), with every event after
    `after_seq` stored; the caller moves the checkpoint (set_checkpoint) in the same
    transaction. Works for any number of events; when they touch a large share of the deals it
    rebuilds instead (rebuild_projections). A caller with very many events (an import) should
    make that choice before (rebuild_threshold): the refresh reads every new event first.
    """
    plan = _plan(cur, after_seq)
    if not plan.deals:
        return
    if len(plan.deals) >= REBUILD_MIN_DEALS and len(plan.deals) > rebuild_threshold(cur):
        rebuild_projections(cur)
        return
    if _python_foldable(plan):
        _fold_in_python(cur, plan)
        return
    cur.execute(
        UPSERT_DEAL_STATE,
        {"after": after_seq, "deals": plan.deals, "refold": plan.refold, "seqs": plan.seqs},
    )
    if plan.link_others:  # after the states: a link may name a deal reported in the same append
        cur.execute(INSERT_NEW_LINKS, {"after": after_seq, "others": plan.link_others})
    if plan.retraction_targets:
        targets = plan.retraction_targets
        for deal_id, other in cur.execute(SELECT_RETRACTED_LINKS, {"targets": targets}).fetchall():
            plan.changed |= {deal_id, other}
        cur.execute(RETRACT_LINKS, {"after": after_seq, "targets": targets})
    recount = _within_two_links(cur, plan.changed)
    around = _within_two_links(cur, recount)
    cur.execute(CREATE_AROUND, {"around": sorted(around)})
    cur.execute(UPDATE_COUNTS, {"recount": sorted(recount)})
    cur.execute(DROP_AROUND)


def _plan(cur: duckdb.DuckDBPyConnection, after_seq: int) -> _Plan:
    result = cur.execute(SELECT_NEW_EVENTS, {"after": after_seq})
    names = [d[0] for d in result.description]
    new = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    touched = {e["deal_id"] for e in new}
    link_others = []
    retraction_targets = []
    for e in new:
        if e["type"] == "DealsLinked":
            link_others.append(e["link_other"])
            if e["link_relation"] != "overlaps":
                touched.add(e["link_other"])
        elif e["type"] == "EventRetracted":
            retraction_targets.append(str(e["target_event_id"]))
    deals = sorted(touched)
    result = cur.execute(SELECT_DEAL_ROWS, {"deals": deals})
    names = [d[0] for d in result.description]
    before = {r[0]: dict(zip(names, r, strict=True)) for r in result.fetchall()}
    plan = _Plan(
        new=new,
        rows=before,
        deals=deals,
        link_others=link_others,
        retraction_targets=retraction_targets,
        changed=set(touched),
    )
    earliest: dict[str, datetime] = {}
    retracting = {e["deal_id"] for e in new if e["type"] == "EventRetracted"}
    for e in new:
        if e["deal_id"] not in earliest or e["occurred_at"] < earliest[e["deal_id"]]:
            earliest[e["deal_id"]] = e["occurred_at"]
    for deal_id in deals:
        row = before.get(deal_id)
        last = row["last_event_at"] if row else None
        back_dated = last is not None and deal_id in earliest and earliest[deal_id] < last
        if deal_id in retracting or back_dated:
            plan.refold.append(deal_id)
            plan.seqs += list(row["seqs"] if row else []) + [
                e["seq"] for e in new if e["deal_id"] == deal_id
            ]
    return plan


def _python_foldable(plan: _Plan) -> bool:
    """The common case: a few deals without links, new events in order, no link, no retraction."""
    return (
        len(plan.deals) <= PYTHON_FOLD_MAX_DEALS
        and not plan.refold
        and not plan.link_others
        and not plan.retraction_targets
        and all(not (plan.rows.get(d) or {}).get("linked") for d in plan.deals)
    )


def _fold_in_python(cur: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """Fold the new events onto their deals' rows and count the deals (none has a link)."""
    for deal_id in plan.deals:
        old = plan.rows.get(deal_id)
        row = dict(old) if old else _empty_row(deal_id)
        mine = [e for e in plan.new if e["deal_id"] == deal_id]
        for event in sorted(mine, key=lambda e: (e["occurred_at"], e["seq"])):  # valid time
            _fold_event(row, event)
        row.update(_count(row))
        types = _column_types(cur)
        if old is None:
            values = ", ".join(f"${c}::{t} AS {c}" for c, t in types.items())
            cur.execute(INSERT_DEAL_ROW.format(values=values), {c: row.get(c) for c in types})
        else:
            changed = {c: v for c, v in row.items() if c == "deal_id" or v != old[c]}
            assignments = ", ".join(f"{c} = ${c}::{types[c]}" for c in changed if c != "deal_id")
            cur.execute(UPDATE_DEAL_ROW.format(assignments=assignments), changed)


def _empty_row(deal_id: str) -> dict[str, Any]:
    return {"deal_id": deal_id, "reported": False, "seqs": [], "linked": []}


def _fold_event(row: dict[str, Any], e: dict[str, Any]) -> None:
    """deal_fold for one standing event later than all of the row's (see the module docstring)."""
    kind = e["type"]
    first = not row.get("events")
    row["reported"] = row["reported"] or kind == "DealReported"
    row["lab"] = e["lab"] if e["lab"] is not None else row.get("lab")
    row["deal_lab"] = row.get("deal_lab") or e["lab"]
    for name, types in FIELDS_SET_BY.items():
        if kind in types and e[name] is not None:
            row[name] = e[name]
    if e["online_mw"] is not None:
        row["online_mw"] = (row.get("online_mw") or 0) + e["online_mw"]
    row["online_reports"] = (row.get("online_reports") or 0) + (kind == "CapacityCameOnline")
    cps = [] if first else list(row.get("counterparties") or [])
    if kind in ("DealReported", "DealTermsRevised") and e["counterparties"] is not None:
        cps = _distinct_in_order(e["counterparties"])
    elif kind == "CounterpartyJoined" and e["counterparties"] is not None:
        cps = _distinct_in_order(cps + e["counterparties"])
    row["counterparties"] = cps
    at = e["occurred_at"]
    row["first_reported_at"] = at if first else min(row["first_reported_at"], at)
    row["last_event_at"] = at if first else max(row["last_event_at"], at)
    row["events"] = (row.get("events") or 0) + 1
    row["last_seq"] = e["seq"] if first else max(row["last_seq"], e["seq"])
    hashes = [] if first else list(row.get("source_hashes") or [])
    if e["source_hash"] is not None and e["source_hash"] not in hashes:
        hashes.append(e["source_hash"])
    row["source_hashes"] = hashes
    row["sources"] = len(hashes)
    row["seqs"] = [*row["seqs"], e["seq"]]


def _count(s: dict[str, Any]) -> dict[str, Any]:
    """deal_counting_of for a deal with no link: what it adds to its lab's position."""
    if not s["reported"]:
        return dict.fromkeys(COUNT_COLUMNS)
    status, kind = s.get("status"), s.get("kind")
    excluded = status in ENDED
    counted_mw = 0.0 if excluded else _first(s.get("capacity_mw"), s.get("online_mw"), 0.0)
    online = 0.0 if excluded else (s.get("online_mw") or 0.0)
    counted_usd = 0.0 if excluded else (s.get("value_usd") or 0.0)
    chips = s.get("chips")
    counted_chips = None if excluded or chips is None else chips["count"]
    operational = counted_mw if status == "operational" and online == 0 else min(online, counted_mw)
    rest = counted_mw - operational
    backing = kind in BACKING_KINDS
    cps = s.get("counterparties") or []
    suppliers = ["self"]
    for role in SUPPLIER_ROLES:
        parties = _distinct_in_order([c["party"] for c in cps if c["role"] == role])
        if parties:
            suppliers = parties
            break
    return {
        "superseded_by": None,
        "parent_deal": None,
        "capacity_in_parent": False,
        "value_in_parent": False,
        "chips_in_parent": False,
        "excluded": excluded,
        "counted_mw": float(counted_mw),
        "counted_usd": float(counted_usd),
        "counted_chips": counted_chips,
        "operational_mw": float(operational),
        "contracted_mw": float(rest if status in COMMITTED else 0),
        "pipeline_mw": float(rest if status in PIPELINE else 0),
        "rumored_mw": float(rest if status == "rumored" else 0),
        # (a NULL kind is in neither: SQL's `kind NOT IN (...)` is NULL then)
        "committed_usd": float(
            counted_usd if status in COMMITTED and kind is not None and not backing else 0
        ),
        "pipeline_usd": float(
            counted_usd if status in PIPELINE and kind is not None and not backing else 0
        ),
        "backing_usd": float(counted_usd if status in COMMITTED and backing else 0),
        "suppliers": suppliers,
    }


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _distinct_in_order(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


_TYPES: dict[str, str] = {}


def _column_types(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """deal_state's columns and their SQL types, to cast a row's parameters (read once: every
    database this code opens has the same schema)."""
    if not _TYPES:
        _TYPES.update(
            (name, type_) for name, type_, *_ in cur.execute("DESCRIBE deal_state").fetchall()
        )
    return _TYPES


def _within_two_links(cur: duckdb.DuckDBPyConnection, deals: Iterable[str]) -> set[str]:
    """The deals and those joined to them by one or two part_of / supersedes links (ever)."""
    found = set(deals)
    frontier = sorted(found)
    for _ in range(2):
        if not frontier:
            break
        rows = cur.execute(SELECT_LINKED, {"deals": frontier}).fetchall()
        nxt = {other for _, linked in rows for other in linked or ()} - found
        found |= nxt
        frontier = sorted(nxt)
    return found


def rebuild_projections(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild every maintained read model from the log (after a bulk import, or to prove it).

    Run it inside a transaction: readers see the old tables until it commits.
    """
    cur.execute(REBUILD)
    cur.execute(SET_CHECKPOINT_TO_HEAD)


def projected_seq(cur: duckdb.DuckDBPyConnection) -> int:
    """The seq up to which the read models have folded the log."""
    return int(cur.execute(SELECT_CHECKPOINT).fetchone()[0])  # type: ignore[index]


def set_checkpoint(cur: duckdb.DuckDBPyConnection, seq: int) -> None:
    """Record that the read models have folded the log up to `seq` (in their transaction)."""
    cur.execute(UPDATE_CHECKPOINT, {"seq": seq})


def set_checkpoint_to_head(cur: duckdb.DuckDBPyConnection) -> None:
    """Record that the read models have folded every event stored (in their transaction)."""
    cur.execute(SET_CHECKPOINT_TO_HEAD)


def rebuild_threshold(cur: duckdb.DuckDBPyConnection) -> int:
    """How many touched deals make refresh_projections rebuild instead of merging."""
    existing = cur.execute(SELECT_DEAL_COUNT).fetchone()[0]  # type: ignore[index]
    return max(REBUILD_MIN_DEALS, int(REBUILD_SHARE * existing))
