-- The two unique keys of the log become named unique indexes instead of table constraints. They
-- guard the same things, but an index can be dropped and built again: a bulk import into an
-- empty log loads the rows and builds each index once at commit (sorting 1M keys), instead of
-- inserting every key into it one by one (EventStore.import_chunks). The table is rebuilt
-- because DuckDB cannot drop a table constraint: the old table is renamed, every row is copied
-- as it is, the copy is checked (same count, same seq range), and only then is the old table
-- dropped, all in the migration's one transaction.
ALTER TABLE events RENAME TO events_v3;
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
    target_event_id  UUID
);
INSERT INTO events SELECT * FROM events_v3 ORDER BY seq;
SELECT CASE WHEN (SELECT (count(*), min(seq), max(seq)) FROM events)
                 IS DISTINCT FROM (SELECT (count(*), min(seq), max(seq)) FROM events_v3)
            THEN error('migration 004: the copy of the events table differs from the original')
       END;
DROP TABLE events_v3;
-- Without this key two concurrent writers that both read version 2 both commit a version 3.
CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);
-- The idempotency key (the event id when the caller gives none) makes re-sending safe.
CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key);
