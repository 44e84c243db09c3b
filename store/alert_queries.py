"""Read models of alerts: the rule events, and the deals first reported after a given time."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from events.envelope import RecordedEvent
from store.log import EventStore
from store.rows import ENVELOPE_SELECT, recorded_from_row

ALERT_EVENT_TYPES = ("AlertRuleAdded", "AlertRuleRemoved", "AlertFired")

SELECT_ALERT_EVENTS = ENVELOPE_SELECT + " WHERE type IN (SELECT unnest($types)) ORDER BY seq"

# Deals whose DealReported was recorded after $since, in their current state (deal_current, the
# maintained table: no fold of the log), at least $min_mw, neither shelved nor cancelled.
SELECT_NEW_DEALS = """
WITH reported AS (
    SELECT deal_id, recorded_at, source_url, source_title FROM events
    WHERE type = 'DealReported' AND recorded_at > $since
)
SELECT c.deal_id, c.lab, c.kind, c.status, c.title, c.capacity_mw, r.recorded_at, r.source_url,
       r.source_title
FROM deal_current c JOIN reported r USING (deal_id)
WHERE c.reported AND c.capacity_mw >= $min_mw AND c.status NOT IN ('shelved', 'cancelled')
ORDER BY r.recorded_at, c.deal_id
"""


class NewDeal(BaseModel):
    """A deal as it stands now, first reported (recorded) at recorded_at."""

    model_config = ConfigDict(frozen=True)
    deal_id: str
    lab: str
    kind: str
    status: str
    title: str | None
    capacity_mw: float
    recorded_at: datetime
    source_url: str | None
    source_title: str | None


def alert_events(store: EventStore) -> list[RecordedEvent]:
    """Every AlertRuleAdded, AlertRuleRemoved and AlertFired, in log order."""
    rows = store.cursor().execute(SELECT_ALERT_EVENTS, {"types": list(ALERT_EVENT_TYPES)})
    return [recorded_from_row(r) for r in rows.fetchall()]


def new_deals(store: EventStore, since: datetime, min_mw: float) -> list[NewDeal]:
    """Deals first recorded after `since` whose current capacity is at least `min_mw`."""
    cur = store.cursor()
    rows = cur.execute(SELECT_NEW_DEALS, {"since": since, "min_mw": min_mw}).fetchall()
    names = [d[0] for d in cur.description]
    return [NewDeal.model_validate(dict(zip(names, r, strict=True))) for r in rows]
