"""Reads for reviewing feed candidates: the undecided candidate streams, with their events."""

from __future__ import annotations

from events.envelope import RecordedEvent
from store.log import EventStore
from store.rows import ENVELOPE_SELECT, recorded_from_row

# Every event of the candidate streams that have a CandidateProposed and no decision, in order.
SELECT_PENDING_CANDIDATE_EVENTS = (
    ENVELOPE_SELECT
    + """
WHERE stream_id IN (
    SELECT stream_id FROM events
    WHERE type IN ('CandidateProposed', 'CandidateAccepted', 'CandidateRejected')
    GROUP BY stream_id
    HAVING bool_or(type = 'CandidateProposed')
       AND NOT bool_or(type IN ('CandidateAccepted', 'CandidateRejected'))
)
ORDER BY seq
"""
)


# Candidate streams whose id starts with a prefix (what an analyst typed of one).
SELECT_CANDIDATE_STREAMS = """
SELECT DISTINCT stream_id FROM events
WHERE type = 'CandidateProposed' AND starts_with(stream_id, $prefix)
ORDER BY stream_id
LIMIT $limit
"""


def candidate_streams(store: EventStore, prefix: str, *, limit: int) -> list[str]:
    """Up to `limit` proposed candidate streams whose id starts with `prefix`."""
    rows = store.cursor().execute(SELECT_CANDIDATE_STREAMS, {"prefix": prefix, "limit": limit})
    return [r[0] for r in rows.fetchall()]


def pending_candidate_events(store: EventStore) -> dict[str, list[RecordedEvent]]:
    """Undecided candidate streams (oldest proposal first), each with its events in order."""
    rows = store.cursor().execute(SELECT_PENDING_CANDIDATE_EVENTS).fetchall()
    streams: dict[str, list[RecordedEvent]] = {}
    for row in rows:
        event = recorded_from_row(row)
        streams.setdefault(event.stream_id, []).append(event)
    return streams
