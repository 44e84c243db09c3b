-- News feed polling state (bot/feeds.py): not events, but what the poller must remember across
-- restarts. Rows are replaced with INSERT OR REPLACE; the events table is never touched here.
CREATE TABLE feed_state (
    feed_url        VARCHAR     PRIMARY KEY,
    etag            VARCHAR,
    last_modified   VARCHAR,
    failures        INTEGER     NOT NULL DEFAULT 0,
    -- not before this time (backoff after an error, or the server's Retry-After)
    next_poll_at    TIMESTAMPTZ,
    -- set after too many failures in a row; the feed is skipped until then
    paused_until    TIMESTAMPTZ,
    last_polled_at  TIMESTAMPTZ,
    last_status     INTEGER,
    last_error      VARCHAR,
    updated_at      TIMESTAMPTZ NOT NULL
);

-- Items already read: 'id:<feed url> <entry id>' and 'url:<normalised article url>', so that an
-- article is read once even when it reappears with a new id or in another feed.
CREATE TABLE feed_items_seen (
    item_key  VARCHAR     PRIMARY KEY,
    feed_url  VARCHAR     NOT NULL,
    seen_at   TIMESTAMPTZ NOT NULL
);
