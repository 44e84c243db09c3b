-- The event log: one row per event, append-only. The payload is the source of truth; the typed
-- columns beside it are written at append time from the payload, because projections over JSON
-- were 5-12x slower than the same SQL over typed columns (DESIGN.md, "Events").
CREATE TABLE events (
    seq              BIGINT      NOT NULL,
    event_id         UUID        NOT NULL,
    stream_id        VARCHAR     NOT NULL,
    version          INTEGER     NOT NULL,
    type             VARCHAR     NOT NULL,
    schema           SMALLINT    NOT NULL,
    occurred_at      TIMESTAMPTZ NOT NULL,
    recorded_at      TIMESTAMPTZ NOT NULL,
    actor            VARCHAR     NOT NULL,
    source_url       VARCHAR,
    source_title     VARCHAR,
    idempotency_key  VARCHAR     NOT NULL,
    payload          JSON        NOT NULL,
    -- typed columns for projections (NULL where the event type does not set them)
    deal_id          VARCHAR,
    lab              VARCHAR,
    kind             VARCHAR,
    status           VARCHAR,
    capacity_mw      DOUBLE,
    value_usd        DOUBLE,
    chips            STRUCT(vendor VARCHAR, family VARCHAR, count BIGINT),
    term_years       DOUBLE,
    online_from      VARCHAR,
    location         VARCHAR,
    title            VARCHAR,
    online_mw        DOUBLE,
    counterparties   STRUCT(party VARCHAR, role VARCHAR)[],
    link_relation    VARCHAR,
    link_other       VARCHAR,
    target_event_id  UUID,
    -- Without this key two concurrent writers that both read version 2 both commit a version 3.
    UNIQUE (stream_id, version),
    -- The idempotency key (the event id when the caller gives none) makes re-sending safe.
    UNIQUE (idempotency_key)
);
