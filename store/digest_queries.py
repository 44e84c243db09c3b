"""Read models of the weekly digest: what was recorded in a known-time window, and open candidates.

Every query takes its known-time bounds explicitly (no hidden now()): the digest of a week reads
only what was recorded by the end of that week, so it is the same whenever it is generated.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from store.log import EventStore

# Deal events recorded in [start, end] that still stand as known at `end`, with the deal's
# title and the status the deal had before the event (for "loi -> signed").
SELECT_WEEK_EVENTS = """
WITH standing AS (
    SELECT e.* FROM events e
    WHERE e.deal_id IS NOT NULL AND e.type <> 'EventRetracted' AND e.recorded_at <= $end
      AND NOT EXISTS (SELECT 1 FROM events r
                      WHERE r.type = 'EventRetracted' AND r.target_event_id = e.event_id
                        AND r.recorded_at <= $end)
),
statuses AS (
    SELECT event_id,
           lag(status) OVER (PARTITION BY deal_id ORDER BY occurred_at, seq) AS previous_status
    FROM standing WHERE type IN ('DealReported', 'DealStatusChanged')
),
titles AS (
    SELECT deal_id, any_value(title) AS deal_title FROM standing
    WHERE type = 'DealReported' GROUP BY deal_id
)
SELECT s.seq, s.deal_id, s.type, s.lab, s.kind, s.status, st.previous_status, s.capacity_mw,
       s.value_usd, s.online_mw, t.deal_title, s.occurred_at, s.recorded_at, s.source_url,
       s.source_title, s.payload ->> 'reason' AS reason
FROM standing s
LEFT JOIN statuses st USING (event_id)
LEFT JOIN titles t USING (deal_id)
WHERE s.recorded_at >= $start
ORDER BY s.recorded_at, s.seq
"""

# Retractions recorded in [start, end], with what they retracted.
SELECT_WEEK_RETRACTIONS = """
SELECT r.seq, t.deal_id, t.type, t.lab, t.occurred_at, r.recorded_at,
       r.payload ->> 'reason' AS reason, r.source_url, r.source_title
FROM events r JOIN events t ON t.event_id = r.target_event_id
WHERE r.type = 'EventRetracted' AND r.recorded_at >= $start AND r.recorded_at <= $end
  AND t.deal_id IS NOT NULL
ORDER BY r.recorded_at, r.seq
"""

# Candidate streams proposed by known_at with no decision recorded by known_at.
SELECT_PENDING_CANDIDATES = """
SELECT count(DISTINCT c.stream_id) FROM events c
WHERE c.type = 'CandidateProposed' AND c.recorded_at <= $known_at
  AND NOT EXISTS (SELECT 1 FROM events d
                  WHERE d.stream_id = c.stream_id
                    AND d.type IN ('CandidateAccepted', 'CandidateRejected')
                    AND d.recorded_at <= $known_at)
"""


class WeekEvent(BaseModel):
    """A deal event recorded in the window and not retracted by its end."""

    model_config = ConfigDict(frozen=True)
    seq: int
    deal_id: str
    type: str
    lab: str | None
    kind: str | None
    status: str | None
    previous_status: str | None
    capacity_mw: float | None
    value_usd: float | None
    online_mw: float | None
    deal_title: str | None
    occurred_at: datetime
    recorded_at: datetime
    source_url: str | None
    source_title: str | None
    reason: str | None


class WeekRetraction(BaseModel):
    """A retraction recorded in the window: which deal event it withdrew, and why."""

    model_config = ConfigDict(frozen=True)
    seq: int
    deal_id: str
    type: str
    lab: str | None
    occurred_at: datetime
    recorded_at: datetime
    reason: str | None
    source_url: str | None
    source_title: str | None


def week_events(store: EventStore, start: datetime, end: datetime) -> list[WeekEvent]:
    """Deal events recorded in [start, end] (known time) that stand as known at end."""
    cur = store.cursor()
    rows = cur.execute(SELECT_WEEK_EVENTS, {"start": start, "end": end}).fetchall()
    names = [d[0] for d in cur.description]
    return [WeekEvent.model_validate(dict(zip(names, r, strict=True))) for r in rows]


def week_retractions(store: EventStore, start: datetime, end: datetime) -> list[WeekRetraction]:
    """Retractions of deal events recorded in [start, end] (known time)."""
    cur = store.cursor()
    rows = cur.execute(SELECT_WEEK_RETRACTIONS, {"start": start, "end": end}).fetchall()
    names = [d[0] for d in cur.description]
    return [WeekRetraction.model_validate(dict(zip(names, r, strict=True))) for r in rows]


def pending_candidates(store: EventStore, known_at: datetime) -> int:
    """How many news candidates were waiting for an analyst's decision at known_at."""
    row = store.cursor().execute(SELECT_PENDING_CANDIDATES, {"known_at": known_at}).fetchone()
    return int(row[0]) if row else 0
