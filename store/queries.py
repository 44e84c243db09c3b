"""Read models: positions, deals, timelines and explanations, as frozen rows of projections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from events.envelope import RecordedEvent
from store.log import EventStore
from store.rows import ENVELOPE_SELECT, recorded_from_row

BUCKETS = ("operational", "contracted", "pipeline", "rumored")

SELECT_POSITIONS = "SELECT * FROM lab_positions($as_of, $known_at, $labs) ORDER BY lab"
SELECT_PROVIDERS = (
    "SELECT lab, provider, committed_mw, total_mw, deals "
    "FROM lab_providers($as_of, $known_at, $labs) ORDER BY lab, committed_mw DESC, provider"
)
SELECT_CHIPS = (
    "SELECT lab, vendor, family, chips, deals FROM lab_chips($as_of, $known_at, $labs) "
    "ORDER BY lab, chips DESC NULLS LAST, vendor, family"
)
SELECT_KINDS = (
    "SELECT lab, kind, deals, capacity_mw, value_usd FROM lab_kinds($as_of, $known_at, $labs) "
    "ORDER BY lab, capacity_mw DESC, kind"
)
SELECT_COUNTING = (
    "SELECT deal_id, lab, kind, status, title, capacity_mw, value_usd, chips, online_mw, "
    "counterparties, first_reported_at, last_event_at, events, sources, superseded_by, "
    "parent_deal, capacity_in_parent, value_in_parent, chips_in_parent, excluded, counted_mw, "
    "counted_usd, counted_chips, operational_mw, contracted_mw, pipeline_mw, rumored_mw, "
    "committed_usd, pipeline_usd, backing_usd, suppliers "
    "FROM deal_counting($as_of, $known_at, $labs)"
)
SELECT_OVERLAPS = (
    "SELECT deal_a, lab_a, deal_b, lab_b, overlap_mw FROM deal_overlaps($as_of, $known_at) "
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


def _params(
    as_of: datetime | None, known_at: datetime | None, labs: list[str] | None
) -> dict[str, Any]:
    return {"as_of": as_of, "known_at": known_at, "labs": labs}


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
        """Positions of the given labs (all labs with deals when None), in one round of queries."""
        cur = self.store.cursor()
        params = _params(as_of, known_at, labs)
        totals = cur.execute(SELECT_POSITIONS, params).fetchall()
        names = [d[0] for d in cur.description]  # type: ignore[union-attr]
        providers: dict[str, dict[str, ProviderTotal]] = {}
        for lab, provider, committed, total, deals in cur.execute(
            SELECT_PROVIDERS, params
        ).fetchall():
            providers.setdefault(lab, {})[provider] = ProviderTotal(
                committed_mw=committed, total_mw=total, deals=deals
            )
        chips: dict[str, list[ChipTotal]] = {}
        for lab, vendor, family, count, deals in cur.execute(SELECT_CHIPS, params).fetchall():
            chips.setdefault(lab, []).append(
                ChipTotal(vendor=vendor, family=family, count=count, deals=deals)
            )
        kinds: dict[str, dict[str, KindTotal]] = {}
        for lab, kind, deals, mw, usd in cur.execute(SELECT_KINDS, params).fetchall():
            kinds.setdefault(lab, {})[kind] = KindTotal(deals=deals, capacity_mw=mw, value_usd=usd)
        found = {}
        for row in totals:
            r = dict(zip(names, row, strict=True))
            found[r["lab"]] = Position(
                lab=r["lab"],
                as_of=as_of,
                known_at=known_at,
                capacity_mw=Capacity(
                    operational=r["operational_mw"],
                    contracted=r["contracted_mw"],
                    pipeline=r["pipeline_mw"],
                    rumored=r["rumored_mw"],
                ),
                committed_usd=r["committed_usd"],
                pipeline_usd=r["pipeline_usd"],
                backing_usd=r["backing_usd"],
                by_kind=kinds.get(r["lab"], {}),
                by_provider=providers.get(r["lab"], {}),
                provider_hhi=r["provider_hhi"],
                chips=chips.get(r["lab"], []),
                deals=r["deals"],
            )
        wanted = labs if labs is not None else sorted(found)
        return [found.get(lab) or empty_position(lab, as_of, known_at) for lab in wanted]

    def position(
        self, lab: str, as_of: datetime | None = None, known_at: datetime | None = None
    ) -> Position:
        return self.positions([lab], as_of, known_at)[0]

    def counting(
        self,
        labs: list[str] | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> list[DealCounting]:
        """Every deal of the labs with what it contributes (the basis of /explain and /deals)."""
        cur = self.store.cursor()
        rows = cur.execute(
            SELECT_COUNTING + " ORDER BY first_reported_at, deal_id", _params(as_of, known_at, labs)
        ).fetchall()
        names = [d[0] for d in cur.description]  # type: ignore[union-attr]
        return [DealCounting.model_validate(dict(zip(names, r, strict=True))) for r in rows]

    def overlaps(
        self, as_of: datetime | None = None, known_at: datetime | None = None
    ) -> list[Overlap]:
        rows = self.store.cursor().execute(SELECT_OVERLAPS, {"as_of": as_of, "known_at": known_at})
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
        return self.store.cursor().execute(SELECT_FIRST_EVENT).fetchone()[0]  # type: ignore[index]


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
