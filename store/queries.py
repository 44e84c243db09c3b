"""Read models: positions, deals, timelines and explanations, as frozen rows of projections."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict

from events.envelope import RecordedEvent
from store.log import EventStore
from store.rows import ENVELOPE_SELECT, recorded_from_row

BUCKETS = ("operational", "contracted", "pipeline", "rumored")

# The labs whose deals a fold of `labs` must read (cross-lab links), computed apart so that the
# fold gets it as a constant: the scan then reads only those labs' events.
SELECT_LAB_SCOPE = "SELECT lab_scope($labs::VARCHAR[])"

# What each deal adds to its lab's position. "Now" is the maintained deal_state table; any other
# time is folded once into a temporary table (of the cursor's own connection) that the queries
# below read. Several small queries plan much faster than one query of many parts (planning took
# ~15 ms of such a query, running it ~5 ms).
NOW_COUNTS = (
    "(SELECT * FROM deal_state WHERE reported "
    "AND ($labs::VARCHAR[] IS NULL OR list_contains($labs::VARCHAR[], lab)))"
)
FOLD_COUNTS = (
    "CREATE OR REPLACE TEMP TABLE position_counts AS "
    "SELECT * FROM deal_counts_scoped($as_of::TIMESTAMPTZ, $known_at::TIMESTAMPTZ, "
    "$labs::VARCHAR[], $scope::VARCHAR[])"
)
FOLDED_COUNTS = "position_counts"
DROP_FOLDED_COUNTS = "DROP TABLE IF EXISTS temp.position_counts"
# The buckets and dollars of each lab by kind of deal (excluded deals apart: they add nothing but
# are counted as deals nowhere); a position's totals are the sums of its kinds.
SELECT_KINDS = """
SELECT lab, kind, excluded, sum(counted_mw), sum(operational_mw), sum(contracted_mw),
       sum(pipeline_mw), sum(rumored_mw), sum(committed_usd), sum(pipeline_usd),
       sum(backing_usd), count(*)
FROM {counts} GROUP BY ALL ORDER BY lab, kind, excluded
"""
# MW by supplier (part 'p'), then chips by vendor and family (part 'c'), in one query.
SELECT_PROVIDERS_AND_CHIPS = """
SELECT 'p' AS part, lab, supplier AS a, NULL AS b,
       sum((operational_mw + contracted_mw) / len(suppliers)) AS x,
       sum(counted_mw / len(suppliers)) AS y, count(*) AS n
FROM (SELECT *, unnest(suppliers) AS supplier FROM {counts} WHERE NOT excluded AND counted_mw > 0)
GROUP BY lab, supplier
UNION ALL
SELECT 'c', lab, chips.vendor, coalesce(chips.family, '?'), sum(counted_chips), NULL, count(*)
FROM {counts}
WHERE NOT excluded AND chips IS NOT NULL AND status IN ('signed', 'operational')
GROUP BY ALL
ORDER BY part DESC, lab, x DESC NULLS LAST, a, b
"""
SELECT_COUNTING = (
    "SELECT deal_id, lab, kind, status, title, capacity_mw, value_usd, chips, online_mw, "
    "counterparties, first_reported_at, last_event_at, events, sources, superseded_by, "
    "parent_deal, capacity_in_parent, value_in_parent, chips_in_parent, excluded, counted_mw, "
    "counted_usd, counted_chips, operational_mw, contracted_mw, pipeline_mw, rumored_mw, "
    "committed_usd, pipeline_usd, backing_usd, suppliers "
    "FROM deal_counting_scoped($as_of::TIMESTAMPTZ, $known_at::TIMESTAMPTZ, $labs::VARCHAR[], "
    "$scope::VARCHAR[])"
)
SELECT_OVERLAPS = (
    "SELECT deal_a, lab_a, deal_b, lab_b, overlap_mw "
    "FROM deal_overlaps($as_of::TIMESTAMPTZ, $known_at::TIMESTAMPTZ, $labs::VARCHAR[]) "
    "ORDER BY overlap_mw DESC, deal_a"
)
SELECT_DEAL_EVENTS = ENVELOPE_SELECT + " WHERE stream_id = $stream ORDER BY occurred_at, seq"
SELECT_RETRACTIONS = (
    "SELECT target_event_id, recorded_at, payload ->> 'reason' FROM events "
    "WHERE type = 'EventRetracted' AND stream_id = $stream"
)
SELECT_EVENT_SOURCES = (
    "SELECT deal_id, event_id, type, occurred_at, source_url, source_title FROM deal_history "
    "WHERE deal_id IN (SELECT unnest($deals::VARCHAR[])) AND NOT retracted "
    "AND occurred_at <= coalesce($as_of::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ) "
    "AND recorded_at <= coalesce($known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ) "
    "ORDER BY deal_id, occurred_at, seq"
)
SELECT_COVERAGE = """
SELECT lab,
       count(*) AS deals,
       count(*) FILTER (WHERE sources >= 2) AS multi_source,
       count(*) FILTER (WHERE status IN ('rumored', 'loi')) AS rumored_or_loi,
       count(*) FILTER (WHERE status IN ('rumored', 'negotiating', 'loi')) AS unconfirmed
FROM deal_counting() WHERE NOT excluded GROUP BY lab ORDER BY deals DESC, lab
"""
SELECT_FIRST_EVENT = "SELECT min(occurred_at) FROM events WHERE deal_id IS NOT NULL"


class Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class Capacity(Row):
    """MW by bucket: operational (online), contracted (signed, not online), pipeline, rumored."""

    operational: float = 0.0
    contracted: float = 0.0
    pipeline: float = 0.0
    rumored: float = 0.0


class KindTotal(Row):
    deals: int
    capacity_mw: float
    value_usd: float


class ProviderTotal(Row):
    """A supplier's MW for a lab: committed (operational + contracted) and in all buckets."""

    committed_mw: float
    total_mw: float
    deals: int


class ChipTotal(Row):
    vendor: str
    family: str
    count: int | None
    deals: int


class Position(Row):
    """A lab's compute position at valid time as_of, as known at known_at (None = now)."""

    lab: str
    as_of: datetime | None
    known_at: datetime | None
    capacity_mw: Capacity
    committed_usd: float
    pipeline_usd: float
    backing_usd: float
    by_kind: dict[str, KindTotal]
    by_provider: dict[str, ProviderTotal]
    provider_hhi: float | None
    chips: list[ChipTotal]
    deals: int


class DealCounting(Row):
    """One deal's state and what it adds to its lab's figures (zero where it does not count)."""

    deal_id: str
    lab: str
    kind: str
    status: str
    title: str | None
    capacity_mw: float | None
    value_usd: float | None
    chips: dict[str, Any] | None
    online_mw: float | None
    counterparties: list[dict[str, str]]
    first_reported_at: datetime
    last_event_at: datetime
    events: int
    sources: int
    superseded_by: str | None
    parent_deal: str | None
    capacity_in_parent: bool
    value_in_parent: bool
    chips_in_parent: bool
    excluded: bool
    counted_mw: float
    counted_usd: float
    counted_chips: int | None
    operational_mw: float
    contracted_mw: float
    pipeline_mw: float
    rumored_mw: float
    committed_usd: float
    pipeline_usd: float
    backing_usd: float
    suppliers: list[str]


class Overlap(Row):
    deal_a: str
    lab_a: str
    deal_b: str
    lab_b: str
    overlap_mw: float


class EventSource(Row):
    deal_id: str
    event_id: str
    type: str
    occurred_at: datetime
    source_url: str | None
    source_title: str | None


class TimelineEntry(Row):
    """An event of a deal's history, with its retraction if it was retracted."""

    event: RecordedEvent
    retracted_at: datetime | None = None
    retraction_reason: str | None = None


class CoverageRow(Row):
    lab: str
    deals: int
    multi_source: int
    rumored_or_loi: int
    unconfirmed: int


def _is_now(as_of: datetime | None, known_at: datetime | None) -> bool:
    return as_of is None and known_at is None


SELECT_LABS_WITH_DEALS = (
    "SELECT DISTINCT coalesce(lab, deal_lab) FROM deal_state "
    "WHERE coalesce(lab, deal_lab) IS NOT NULL ORDER BY 1"
)
# Deal ids that contain a text (a part of an id a user typed), with how many do.
SELECT_DEAL_IDS_CONTAINING = """
SELECT deal_id, count(*) OVER () FROM deal_state
WHERE contains(deal_id, $text)
ORDER BY deal_id
LIMIT $limit
"""


class Queries:
    """Read-side queries over a store; every method takes as_of/known_at explicitly (None = now)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def positions(
        self,
        labs: list[str] | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> list[Position]:
        """Positions of the given labs (all labs with deals when None), from one fold at most."""
        cur = self.store.cursor()
        params: dict[str, Any] = {"labs": labs}
        if _is_now(as_of, known_at):
            counts = NOW_COUNTS
        else:
            scope = self._scope(cur, labs, as_of, known_at)
            cur.execute(
                FOLD_COUNTS, {"as_of": as_of, "known_at": known_at, "labs": labs, "scope": scope}
            )
            counts, params = FOLDED_COUNTS, {}
        try:
            kinds = cur.execute(SELECT_KINDS.format(counts=counts), params).fetchall()
            parts = cur.execute(SELECT_PROVIDERS_AND_CHIPS.format(counts=counts), params).fetchall()
        finally:
            if counts == FOLDED_COUNTS:
                cur.execute(DROP_FOLDED_COUNTS)
        providers: dict[str, dict[str, ProviderTotal]] = {}
        chips: dict[str, list[ChipTotal]] = {}
        for part, lab, a, b, x, y, n in parts:
            if part == "p":
                providers.setdefault(lab, {})[a] = ProviderTotal(
                    committed_mw=x, total_mw=y, deals=n
                )
            else:
                chips.setdefault(lab, []).append(ChipTotal(vendor=a, family=b, count=x, deals=n))
        found = {}
        for lab, group in itertools.groupby(kinds, key=lambda r: r[0]):
            rows = list(group)
            sums = [sum(r[i] for r in rows) for i in range(3, 11)]
            _, operational, contracted, pipeline, rumored, committed, pipe_usd, backing = sums
            by_kind = {
                kind: KindTotal(deals=n, capacity_mw=mw, value_usd=c_usd + p_usd + b_usd)
                for _, kind, excluded, mw, *_, c_usd, p_usd, b_usd, n in rows
                if not excluded
            }
            found[lab] = Position(
                lab=lab,
                as_of=as_of,
                known_at=known_at,
                capacity_mw=Capacity(
                    operational=operational,
                    contracted=contracted,
                    pipeline=pipeline,
                    rumored=rumored,
                ),
                committed_usd=committed,
                pipeline_usd=pipe_usd,
                backing_usd=backing,
                by_kind=dict(sorted(by_kind.items(), key=lambda kv: (-kv[1].capacity_mw, kv[0]))),
                by_provider=providers.get(lab, {}),
                provider_hhi=provider_hhi(providers.get(lab, {})),
                chips=chips.get(lab, []),
                deals=sum(r[-1] for r in rows if not r[2]),
            )
        wanted = labs if labs is not None else sorted(found)
        return [found.get(lab) or empty_position(lab, as_of, known_at) for lab in wanted]

    @staticmethod
    def _scope(
        cur: duckdb.DuckDBPyConnection,
        labs: list[str] | None,
        as_of: datetime | None,
        known_at: datetime | None,
    ) -> list[str] | None:
        """The labs a fold for `labs` reads (None: all labs, or "now", which folds nothing)."""
        if labs is None or _is_now(as_of, known_at):
            return None
        return cur.execute(SELECT_LAB_SCOPE, {"labs": labs}).fetchone()[0]  # type: ignore[index,no-any-return]

    def position(
        self, lab: str, as_of: datetime | None = None, known_at: datetime | None = None
    ) -> Position:
        return self.positions([lab], as_of, known_at)[0]

    def labs_with_deals(self) -> list[str]:
        """Every lab that a deal was ever reported for (retracted ones too), sorted."""
        return [r[0] for r in self.store.cursor().execute(SELECT_LABS_WITH_DEALS).fetchall()]

    def deal_ids_containing(self, text: str, *, limit: int) -> tuple[list[str], int]:
        """The first `limit` deal ids (in order) that contain `text`, and how many do."""
        rows = (
            self.store.cursor()
            .execute(SELECT_DEAL_IDS_CONTAINING, {"text": text, "limit": limit})
            .fetchall()
        )
        return [r[0] for r in rows], (rows[0][1] if rows else 0)

    def counting(
        self,
        labs: list[str] | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> list[DealCounting]:
        """Every deal of the labs with what it contributes (the basis of /explain and /deals)."""
        cur = self.store.cursor()
        params = {
            "as_of": as_of,
            "known_at": known_at,
            "labs": labs,
            "scope": self._scope(cur, labs, as_of, known_at),
        }
        rows = cur.execute(
            SELECT_COUNTING + " ORDER BY first_reported_at, deal_id", params
        ).fetchall()
        names = [d[0] for d in cur.description]
        return [DealCounting.model_validate(dict(zip(names, r, strict=True))) for r in rows]

    def overlaps(
        self,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        labs: list[str] | None = None,
    ) -> list[Overlap]:
        """Pairs of deals that count the same capacity (with labs: pairs with a deal of theirs)."""
        rows = self.store.cursor().execute(
            SELECT_OVERLAPS, {"as_of": as_of, "known_at": known_at, "labs": labs}
        )
        keys = Overlap.model_fields
        return [Overlap.model_validate(dict(zip(keys, r, strict=True))) for r in rows.fetchall()]

    def sources(
        self, deal_ids: list[str], as_of: datetime | None = None, known_at: datetime | None = None
    ) -> list[EventSource]:
        """The standing events behind the given deals, with their sources, in valid-time order."""
        if not deal_ids:
            return []
        rows = self.store.cursor().execute(
            SELECT_EVENT_SOURCES, {"deals": deal_ids, "as_of": as_of, "known_at": known_at}
        )
        keys = EventSource.model_fields
        return [
            EventSource.model_validate(dict(zip(keys, (r[0], str(r[1]), *r[2:]), strict=True)))
            for r in rows.fetchall()
        ]

    def timeline(self, deal_id: str) -> list[TimelineEntry]:
        """Every event of a deal in valid-time order, retracted ones marked."""
        cur = self.store.cursor()
        stream = f"deal:{deal_id}"
        retracted = {
            str(t): (at, reason)
            for t, at, reason in cur.execute(SELECT_RETRACTIONS, {"stream": stream}).fetchall()
        }
        out = []
        for row in cur.execute(SELECT_DEAL_EVENTS, {"stream": stream}).fetchall():
            event = recorded_from_row(row)
            at, reason = retracted.get(str(event.event_id), (None, None))
            out.append(TimelineEntry(event=event, retracted_at=at, retraction_reason=reason))
        return out

    def coverage(self) -> list[CoverageRow]:
        rows = self.store.cursor().execute(SELECT_COVERAGE).fetchall()
        keys = CoverageRow.model_fields
        return [CoverageRow.model_validate(dict(zip(keys, r, strict=True))) for r in rows]

    def first_event_at(self) -> datetime | None:
        row = self.store.cursor().execute(SELECT_FIRST_EVENT).fetchone()
        first: datetime | None = row[0] if row else None
        return first


def provider_hhi(providers: dict[str, ProviderTotal]) -> float | None:
    """The sum of squared percentage shares of committed MW by supplier (0-10,000); None if none."""
    total = sum(p.committed_mw for p in providers.values())
    if total <= 0:
        return None
    return sum((p.committed_mw / total) ** 2 for p in providers.values()) * 10_000


def empty_position(lab: str, as_of: datetime | None, known_at: datetime | None) -> Position:
    """The position of a lab with no deal standing at (as_of, known_at): all zeros."""
    return Position(
        lab=lab,
        as_of=as_of,
        known_at=known_at,
        capacity_mw=Capacity(),
        committed_usd=0.0,
        pipeline_usd=0.0,
        backing_usd=0.0,
        by_kind={},
        by_provider={},
        provider_hhi=None,
        chips=[],
        deals=0,
    )
