"""Feed polling state (ETag, Last-Modified, failures, pauses, items seen), kept across restarts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from store.log import EventStore

SELECT_STATE = (
    "SELECT feed_url, etag, last_modified, failures, next_poll_at, paused_until, last_polled_at, "
    "last_status, last_error FROM feed_state WHERE feed_url = $url"
)
SELECT_ALL_STATES = (
    "SELECT feed_url, etag, last_modified, failures, next_poll_at, paused_until, last_polled_at, "
    "last_status, last_error FROM feed_state ORDER BY feed_url"
)
# The state table is not the log: replacing a feed's row is how it is kept current.
REPLACE_STATE = (
    "INSERT OR REPLACE INTO feed_state (feed_url, etag, last_modified, failures, next_poll_at, "
    "paused_until, last_polled_at, last_status, last_error, updated_at) "
    "VALUES ($url, $etag, $lm, $failures, $next, $paused, $polled, $status, $error, $now)"
)
SELECT_SEEN = "SELECT item_key FROM feed_items_seen WHERE item_key IN (SELECT unnest($keys))"
INSERT_SEEN = (
    "INSERT OR IGNORE INTO feed_items_seen (item_key, feed_url, seen_at) VALUES ($key, $url, $now)"
)
COUNT_SEEN = "SELECT count(*) FROM feed_items_seen WHERE feed_url = $url"


class FeedState(BaseModel):
    """What the poller remembers of one feed; times are tz-aware UTC."""

    model_config = ConfigDict(frozen=True)
    feed_url: str
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    next_poll_at: datetime | None = None
    paused_until: datetime | None = None
    last_polled_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None


_FIELDS = tuple(FeedState.model_fields)


class FeedStateStore:
    """Reads and writes feed state in the store's database (tables of 003_feeds.sql)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def get(self, feed_url: str) -> FeedState:
        """The feed's state; a feed never polled has the empty state."""
        row = self.store.cursor().execute(SELECT_STATE, {"url": feed_url}).fetchone()
        if row is None:
            return FeedState(feed_url=feed_url)
        return FeedState.model_validate(dict(zip(_FIELDS, row, strict=True)))

    def all(self) -> list[FeedState]:
        rows = self.store.cursor().execute(SELECT_ALL_STATES).fetchall()
        return [FeedState.model_validate(dict(zip(_FIELDS, r, strict=True))) for r in rows]

    def put(self, state: FeedState) -> None:
        self.store.cursor().execute(
            REPLACE_STATE,
            {
                "url": state.feed_url,
                "etag": state.etag,
                "lm": state.last_modified,
                "failures": state.failures,
                "next": state.next_poll_at,
                "paused": state.paused_until,
                "polled": state.last_polled_at,
                "status": state.last_status,
                "error": state.last_error,
                "now": self.store.clock.now(),
            },
        )

    def seen(self, keys: Iterable[str]) -> set[str]:
        """Those of the item keys already recorded as seen."""
        wanted = list(keys)
        if not wanted:
            return set()
        rows = self.store.cursor().execute(SELECT_SEEN, {"keys": wanted}).fetchall()
        return {r[0] for r in rows}

    def mark_seen(self, feed_url: str, keys: Iterable[str]) -> None:
        """Record item keys as seen, in one transaction (a key seen before stays as it was)."""
        cur = self.store.cursor()
        now = self.store.clock.now()
        cur.execute("BEGIN TRANSACTION")
        try:
            for key in keys:
                cur.execute(INSERT_SEEN, {"key": key, "url": feed_url, "now": now})
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def seen_count(self, feed_url: str) -> int:
        row = self.store.cursor().execute(COUNT_SEEN, {"url": feed_url}).fetchone()
        return int(row[0]) if row else 0
