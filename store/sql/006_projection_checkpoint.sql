-- How far the maintained read models (deal_state, deal_link_events) have folded the log. An
-- append commits its events alone and the read models catch up afterwards, in a transaction of
-- their own (EventStore.catch_up): before any read, when the writer is idle, and before the
-- store closes, a snapshot or a backup is taken. The checkpoint moves in the same transaction
-- as the tables it describes, so after a crash the store knows which events to fold again.
-- Up to this version the read models were refreshed in each append's own transaction: they
-- are current with the log.
CREATE TABLE projection_checkpoint (
    projection VARCHAR PRIMARY KEY,
    seq        BIGINT  NOT NULL
);
INSERT INTO projection_checkpoint SELECT 'deal_state', coalesce(max(seq), 0) FROM events;
