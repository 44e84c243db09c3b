-- Positions v2: read models maintained on append, and the projections that read them. This
-- replaces every object of 002_projections.sql (kept as it was applied): databases made before
-- it get the new objects here, filled from their log at the end of this migration.
--
-- Two kinds of objects:
-- * maintained tables, brought up to date by every append inside its transaction
--   (store/projections.py: refresh_projections) and rebuildable from the log at any time
--   (rebuild_projections, or the statements at the end of this file):
--     deal_state       every deal now: the fold of its events, what a refresh needs, and how
--                      the deal counts in its lab's position
--     deal_link_events every DealsLinked event, with the time its retraction became known
-- * views and table macros over them; every macro takes (as_of, known_at), NULL = now (all that
--   is recorded). "Now" reads the maintained tables; any other time folds the log. Timestamps
--   are compared as TIMESTAMPTZ: pass TIMESTAMPTZ '2026-01-01 23:59:59+00' to include a day.

DROP VIEW IF EXISTS deals;
DROP VIEW IF EXISTS deal_history;
DROP MACRO TABLE IF EXISTS deal_states_at;
DROP TABLE IF EXISTS deal_current;
DROP TABLE IF EXISTS deal_count;

-- A list without repeats, in order of first appearance (list_distinct does not keep the order,
-- and a fold must give the same list whether it runs at once or event by event).
CREATE OR REPLACE MACRO distinct_in_order(l) AS list_filter(l, lambda x, i: list_position(l, x) = i);

-- Deal events that stand at (as_of, known_at): a retracted event drops out from the moment its
-- retraction is known (the retraction's recorded_at), whatever its valid time. labs, deals and
-- seqs restrict the events read (a retraction is in the stream of the event it retracts, so the
-- same restriction holds for both); a constant list is pushed into the scan.
CREATE OR REPLACE MACRO valid_deal_events(
    as_of := NULL, known_at := NULL, labs := NULL, deals := NULL, seqs := NULL
) AS TABLE
SELECT e.*
FROM events e
-- An anti join on the (small) set of retractions: a correlated NOT EXISTS here cost 2-10x more.
ANTI JOIN (
    SELECT target_event_id FROM events
    WHERE type = 'EventRetracted'
      AND recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
      AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab))
      AND (deals IS NULL OR list_contains(deals::VARCHAR[], deal_id))
      AND (seqs IS NULL OR list_contains(seqs::BIGINT[], seq))
) r ON r.target_event_id = e.event_id
WHERE e.deal_id IS NOT NULL
  AND e.type <> 'EventRetracted'
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], e.lab))
  AND (deals IS NULL OR list_contains(deals::VARCHAR[], e.deal_id))
  AND (seqs IS NULL OR list_contains(seqs::BIGINT[], e.seq))
  AND e.occurred_at <= coalesce(as_of::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
  AND e.recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- The fold, in one pass over a deal's events (rows for every deal with an event in range;
-- deal_states keeps those with a standing event): each field takes its latest value in
-- valid-time order (ties by seq); counterparties are the latest full list plus those who joined
-- after it; online MW add up. Sources are counted by the hash of their URL (64 bits: no
-- collision is to be expected); source_hashes lets a refresh count a new source without reading
-- the deal's earlier events, and event_seqs lists all of its events, retractions included.
-- Written for speed (this is most of a rebuild): a retracted event or a retraction keeps its
-- row with a NULL order key k, which arg_max skips (as it skips NULL arguments), so one pass
-- serves both the state and event_seqs; each field reads only the event types that set it.
CREATE OR REPLACE MACRO deal_fold(
    as_of := NULL, known_at := NULL, labs := NULL, deals := NULL, seqs := NULL, after := NULL
) AS TABLE
WITH ev AS (
    SELECT e.deal_id, e.type, e.lab, e.kind, e.status, e.capacity_mw, e.value_usd, e.chips,
           e.term_years, e.online_from, e.location, e.title, e.online_mw, e.counterparties,
           e.occurred_at, e.source_url, e.seq,
           -- orders events by valid time, ties by seq: one HUGEINT compares much faster than a
           -- struct (seq < 2^40, and occurred_at is after 1990 so epoch_us is positive)
           CASE WHEN e.type <> 'EventRetracted' AND r.target_event_id IS NULL
                THEN epoch_us(e.occurred_at)::HUGEINT * 1099511627776 + e.seq END AS k
    FROM events e
    -- the (small) set of retractions known by known_at; a retraction is in the stream of the
    -- event it retracts, so the same restrictions apply to it
    LEFT JOIN (
        SELECT target_event_id FROM events
        WHERE type = 'EventRetracted'
          AND recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
          AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab))
          AND (deals IS NULL OR list_contains(deals::VARCHAR[], deal_id))
          AND (seqs IS NULL OR list_contains(seqs::BIGINT[], seq))
          AND (after IS NULL OR seq > after)
    ) r ON r.target_event_id = e.event_id
    WHERE e.deal_id IS NOT NULL
      AND (labs IS NULL OR list_contains(labs::VARCHAR[], e.lab))
      AND (deals IS NULL OR list_contains(deals::VARCHAR[], e.deal_id))
      AND (seqs IS NULL OR list_contains(seqs::BIGINT[], e.seq))
      AND (after IS NULL OR e.seq > after)
      AND e.occurred_at <= coalesce(as_of::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
      AND e.recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
), base AS (
    SELECT
        deal_id,
        -- every event of a deal carries the deal's lab (the store writes it from DealReported)
        any_value(lab) AS deal_lab,
        arg_max(kind, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised')) AS kind,
        arg_max(status, k) FILTER (WHERE type IN ('DealReported', 'DealStatusChanged'))
            AS status,
        arg_max(capacity_mw, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised'))
            AS capacity_mw,
        arg_max(value_usd, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised'))
            AS value_usd,
        arg_max(chips, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised')) AS chips,
        arg_max(term_years, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised'))
            AS term_years,
        arg_max(online_from, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised'))
            AS online_from,
        arg_max(location, k) FILTER (WHERE type IN ('DealReported', 'DealTermsRevised'))
            AS location,
        arg_max(title, k) FILTER (WHERE type = 'DealReported') AS title,
        sum(online_mw) FILTER (WHERE k IS NOT NULL) AS online_mw,  -- set by CapacityCameOnline
        count(k) FILTER (WHERE type = 'CapacityCameOnline') AS online_reports,
        -- the latest full list of counterparties, with its key (joins before it do not count)
        arg_max({'k': k, 'cps': counterparties}, k)
            FILTER (WHERE type IN ('DealReported', 'DealTermsRevised')
                      AND counterparties IS NOT NULL) AS last_list,
        list({'k': k, 'cps': counterparties})
            FILTER (WHERE type = 'CounterpartyJoined' AND k IS NOT NULL) AS joined,
        min(occurred_at) FILTER (WHERE k IS NOT NULL) AS first_reported_at,
        max(occurred_at) FILTER (WHERE k IS NOT NULL) AS last_event_at,
        count(k) AS events,
        max(seq) FILTER (WHERE k IS NOT NULL) AS last_seq,
        list(hash(source_url)) FILTER (WHERE k IS NOT NULL AND source_url IS NOT NULL) AS hashes,
        list(seq) AS event_seqs
    FROM ev
    GROUP BY deal_id
), folded AS (
    SELECT *,
           coalesce(last_list.cps, []) AS base_cps,
           list_distinct(coalesce(hashes, [])) AS source_hashes
    FROM base
)
SELECT
    deal_id,
    -- a DealReported stands (it is the only event with a title, and its title is required)
    title IS NOT NULL AS reported,
    CASE WHEN events > 0 THEN deal_lab END AS lab,
    kind, status, capacity_mw, value_usd, chips, term_years, online_from,
    location, title, online_mw,
    CASE WHEN events > 0 THEN online_reports END AS online_reports,
    CASE WHEN events = 0 THEN NULL
         -- the common case, without a lambda per row: no joins, and no repeat in the list
         WHEN joined IS NULL
              AND (len(base_cps) <= 1 OR (len(base_cps) = 2 AND base_cps[1] <> base_cps[2]))
             THEN base_cps
         ELSE distinct_in_order(list_concat(
             base_cps,
             coalesce(flatten(list_transform(
                 list_filter(list_sort(joined), lambda j: last_list.k IS NULL OR j.k > last_list.k),
                 lambda j: j.cps)), [])))
    END AS counterparties,
    first_reported_at, last_event_at,
    CASE WHEN events > 0 THEN events END AS events,
    CASE WHEN events > 0 THEN len(source_hashes) END AS sources,
    last_seq,
    deal_lab,
    CASE WHEN events > 0 THEN source_hashes END AS source_hashes,
    event_seqs,
    -- what a refresh needs to fold these events onto an earlier state (store/projections.py)
    last_list, joined
FROM folded;

-- The fold of each deal's events at (as_of, known_at).
CREATE OR REPLACE MACRO deal_states(as_of := NULL, known_at := NULL, labs := NULL, deals := NULL)
AS TABLE
SELECT * EXCLUDE (deal_lab, source_hashes, event_seqs, last_list, joined)
FROM deal_fold(as_of, known_at, labs, deals)
WHERE events IS NOT NULL;

-- The maintained tables, declared here for the macros below to bind to, and made at the end of
-- this file from the log as a rebuild makes them (CREATE TABLE AS, then the key), with the same
-- columns and types.
CREATE TABLE deal_link_events (
    event_id     UUID,
    seq          BIGINT,
    deal_id      VARCHAR,
    lab          VARCHAR,
    relation     VARCHAR,
    other_deal   VARCHAR,
    other_lab    VARCHAR,
    linked_at    TIMESTAMPTZ,
    recorded_at  TIMESTAMPTZ,
    source_url   VARCHAR,
    retracted_at TIMESTAMPTZ
);
CREATE TABLE deal_state (
    deal_id           VARCHAR,
    reported          BOOLEAN,
    lab               VARCHAR,
    kind              VARCHAR,
    status            VARCHAR,
    capacity_mw       DOUBLE,
    value_usd         DOUBLE,
    chips             STRUCT(vendor VARCHAR, family VARCHAR, count BIGINT),
    term_years        DOUBLE,
    online_from       VARCHAR,
    location          VARCHAR,
    title             VARCHAR,
    online_mw         DOUBLE,
    online_reports    BIGINT,
    counterparties    STRUCT(party VARCHAR, role VARCHAR)[],
    first_reported_at TIMESTAMPTZ,
    last_event_at     TIMESTAMPTZ,
    events            BIGINT,
    sources           BIGINT,
    last_seq          BIGINT,
    deal_lab          VARCHAR,
    seqs              BIGINT[],
    source_hashes     UBIGINT[],
    linked            VARCHAR[],
    superseded_by      VARCHAR,
    parent_deal        VARCHAR,
    capacity_in_parent BOOLEAN,
    value_in_parent    BOOLEAN,
    chips_in_parent    BOOLEAN,
    excluded           BOOLEAN,
    counted_mw         DOUBLE,
    counted_usd        DOUBLE,
    counted_chips      BIGINT,
    operational_mw     DOUBLE,
    contracted_mw      DOUBLE,
    pipeline_mw        DOUBLE,
    rumored_mw         DOUBLE,
    committed_usd      DOUBLE,
    pipeline_usd       DOUBLE,
    backing_usd        DOUBLE,
    suppliers          VARCHAR[]
);

-- Every deal ever reported, now: its state (the columns of deal_states; reported = false once
-- every event of it is retracted), then what a refresh needs to fold new events without reading
-- old ones: deal_lab (the lab its events carry, kept when they are all retracted), seqs (all of
-- its events, retractions included: a refold reads only these), source_hashes, and linked (the
-- deals joined to it by a part_of or supersedes link either way, ever: whose counting may move
-- when it does). deal_state adds the counting columns (deal_state_rows).
CREATE OR REPLACE MACRO rebuilt_deal_states() AS TABLE
WITH lk AS (
    SELECT deal_id, list(other ORDER BY seq) AS linked
    FROM (SELECT deal_id, link_other AS other, seq FROM events
          WHERE type = 'DealsLinked' AND link_relation <> 'overlaps'
          UNION ALL
          SELECT link_other, deal_id, seq FROM events
          WHERE type = 'DealsLinked' AND link_relation <> 'overlaps')
    GROUP BY deal_id
)
SELECT deal_id, coalesce(f.reported, false) AS reported,
       f.* EXCLUDE (deal_id, reported, deal_lab, source_hashes, event_seqs, last_list, joined),
       f.deal_lab, f.event_seqs AS seqs, f.source_hashes,
       distinct_in_order(coalesce(lk.linked, [])) AS linked
FROM deal_fold() f
LEFT JOIN lk USING (deal_id);

-- Every DealsLinked event; retracted_at is when its retraction was recorded (NULL: standing).
-- The lab of the other deal comes from the relation named `states` (rebuilt_deal_states).
CREATE OR REPLACE MACRO rebuilt_deal_link_events(states) AS TABLE
SELECT e.event_id, e.seq, e.deal_id, e.lab, e.link_relation AS relation,
       e.link_other AS other_deal, o.deal_lab AS other_lab, e.occurred_at AS linked_at,
       e.recorded_at, e.source_url, r.recorded_at AS retracted_at
FROM events e
LEFT JOIN (SELECT target_event_id, recorded_at FROM events WHERE type = 'EventRetracted') r
    ON r.target_event_id = e.event_id
LEFT JOIN query_table(states) o ON o.deal_id = e.link_other
WHERE e.type = 'DealsLinked';

-- The current state of every deal (the columns of deal_states), kept up to date on append.
CREATE OR REPLACE VIEW deal_current AS
SELECT deal_id, reported, lab, kind, status, capacity_mw, value_usd, chips, term_years,
       online_from, location, title, online_mw, online_reports, counterparties,
       first_reported_at, last_event_at, events, sources, last_seq
FROM deal_state;

-- Links between deals that stand at (as_of, known_at); a link applies from its valid time. With
-- labs, the links with either end in one of those labs.
CREATE OR REPLACE MACRO deal_links(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT deal_id, relation, other_deal, linked_at, event_id, source_url
FROM deal_link_events
WHERE linked_at <= coalesce(as_of::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
  AND recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
  AND (retracted_at IS NULL
       OR retracted_at > coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ))
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab)
       OR list_contains(labs::VARCHAR[], other_lab));

-- The labs whose deals can change how the given labs' deals count: a deal's counting reads its
-- parents, its parts, their other parents and who supersedes them, all within two part_of or
-- supersedes links; so two hops over the labs those links join (ever: a superset is safe).
CREATE OR REPLACE MACRO lab_scope(labs) AS (
    WITH l AS (
        SELECT DISTINCT lab, other_lab FROM deal_link_events
        WHERE relation <> 'overlaps' AND lab <> other_lab
    ), h1 AS (
        SELECT unnest(labs::VARCHAR[]) AS lab
        UNION SELECT other_lab FROM l WHERE list_contains(labs::VARCHAR[], lab)
        UNION SELECT lab FROM l WHERE list_contains(labs::VARCHAR[], other_lab)
    ), h2 AS (
        SELECT lab FROM h1
        UNION SELECT l.other_lab FROM l JOIN h1 ON l.lab = h1.lab
        UNION SELECT l.lab FROM l JOIN h1 ON l.other_lab = h1.lab
    )
    SELECT CASE WHEN labs IS NOT NULL THEN coalesce(list(lab ORDER BY lab), []) END FROM h2
);

-- How each deal of the relation named `states` (deal_states columns: a fold, or the states of
-- deal_state) counts at (as_of, known_at), with the links that stand then (see the README, "How
-- positions are counted"): shelved, cancelled and superseded deals count nowhere; a part of an
-- active parent does not count the measures its parent states (capacity, value, chip count),
-- measure by measure, and its online MW count as the parent's online share; owned capacity with
-- no supplier is "self". A deal's row is right when the deals within two part_of / supersedes
-- links of it are among the states (lab_scope); the rows of the others may not be.
-- No CTE here is materialized: `states` is a table (a small temporary one for a refresh) or a
-- CTE that the caller materializes. (DuckDB 2.0 fails with an internal error when a
-- materialized CTE reads, by index, a table that the same transaction has changed.)
CREATE OR REPLACE MACRO deal_counting_of(
    states, as_of := NULL, known_at := NULL, scope := NULL, deals := NULL
) AS TABLE
WITH s AS NOT MATERIALIZED (
    SELECT * FROM query_table(states)
    WHERE reported
      AND (scope IS NULL OR list_contains(scope::VARCHAR[], lab))
      AND (deals IS NULL OR list_contains(deals::VARCHAR[], deal_id))
), l AS NOT MATERIALIZED (
    SELECT * FROM deal_links(as_of, known_at, scope)
    WHERE relation <> 'overlaps'
      AND (deals IS NULL OR list_contains(deals::VARCHAR[], deal_id))
), superseded AS NOT MATERIALIZED (
    SELECT other_deal AS deal_id, min(deal_id) AS superseded_by
    FROM l WHERE relation = 'supersedes' GROUP BY other_deal
), parents AS NOT MATERIALIZED (
    SELECT l.deal_id,
           min(p.deal_id) AS parent_deal,
           bool_or(p.capacity_mw IS NOT NULL) AS capacity_in_parent,
           bool_or(p.value_usd IS NOT NULL) AS value_in_parent,
           bool_or(p.chips.count IS NOT NULL) AS chips_in_parent
    FROM l JOIN s p ON p.deal_id = l.other_deal
    WHERE l.relation = 'part_of' AND p.status NOT IN ('shelved', 'cancelled')
    GROUP BY l.deal_id
), flagged AS NOT MATERIALIZED (
    SELECT s.*,
           sp.superseded_by,
           pa.parent_deal,
           coalesce(pa.capacity_in_parent, false) AS capacity_in_parent,
           coalesce(pa.value_in_parent, false) AS value_in_parent,
           coalesce(pa.chips_in_parent, false) AS chips_in_parent,
           (s.status IN ('shelved', 'cancelled') OR sp.superseded_by IS NOT NULL) AS excluded
    FROM s
    LEFT JOIN superseded sp USING (deal_id)
    LEFT JOIN parents pa USING (deal_id)
), child_online AS NOT MATERIALIZED (
    -- A part that runs with no MW figure brings its whole capacity live inside the parent.
    SELECT parent_deal AS deal_id,
           sum(CASE WHEN status = 'operational' AND coalesce(online_mw, 0) = 0
                    THEN coalesce(capacity_mw, 0) ELSE coalesce(online_mw, 0) END) AS mw
    FROM flagged WHERE capacity_in_parent AND NOT excluded GROUP BY parent_deal
), measured AS NOT MATERIALIZED (
    SELECT f.*,
           CASE WHEN f.excluded OR f.capacity_in_parent THEN 0
                ELSE coalesce(f.capacity_mw, f.online_mw, 0) END AS counted_mw,
           CASE WHEN f.excluded OR f.capacity_in_parent THEN 0
                ELSE coalesce(f.online_mw, 0) + coalesce(co.mw, 0) END AS reported_online_mw,
           CASE WHEN f.excluded OR f.value_in_parent THEN 0
                ELSE coalesce(f.value_usd, 0) END AS counted_usd,
           CASE WHEN f.excluded OR f.chips_in_parent THEN NULL
                ELSE f.chips.count END AS counted_chips
    FROM flagged f LEFT JOIN child_online co USING (deal_id)
), bucketed AS NOT MATERIALIZED (
    SELECT m.*,
           -- An operational deal with no MW online figure counts whole: the status says it
           -- runs and nothing says how much; otherwise the MW reported online count.
           CASE WHEN m.status = 'operational' AND m.reported_online_mw = 0 THEN m.counted_mw
                ELSE least(m.reported_online_mw, m.counted_mw) END AS operational_mw
    FROM measured m
)
SELECT
    deal_id, lab, kind, status, title, capacity_mw, value_usd, chips, online_mw, counterparties,
    first_reported_at, last_event_at, events, sources,
    superseded_by, parent_deal, capacity_in_parent, value_in_parent, chips_in_parent, excluded,
    counted_mw::DOUBLE AS counted_mw, counted_usd::DOUBLE AS counted_usd, counted_chips,
    operational_mw::DOUBLE AS operational_mw,
    CASE WHEN status IN ('signed', 'operational') THEN counted_mw - operational_mw ELSE 0 END
        ::DOUBLE AS contracted_mw,
    CASE WHEN status IN ('loi', 'negotiating') THEN counted_mw - operational_mw ELSE 0 END
        ::DOUBLE AS pipeline_mw,
    CASE WHEN status = 'rumored' THEN counted_mw - operational_mw ELSE 0 END::DOUBLE
        AS rumored_mw,
    CASE WHEN status IN ('signed', 'operational')
          AND kind NOT IN ('investment_for_compute', 'guarantee') THEN counted_usd ELSE 0 END
        ::DOUBLE AS committed_usd,
    CASE WHEN status IN ('loi', 'negotiating')
          AND kind NOT IN ('investment_for_compute', 'guarantee') THEN counted_usd ELSE 0 END
        ::DOUBLE AS pipeline_usd,
    CASE WHEN status IN ('signed', 'operational')
          AND kind IN ('investment_for_compute', 'guarantee') THEN counted_usd ELSE 0 END
        ::DOUBLE AS backing_usd,
    -- The parties that supply the capacity: providers, else landlords, else chip suppliers,
    -- else the lab itself ("self"); a deal's MW are split evenly between them.
    CASE
        WHEN len([c FOR c IN counterparties IF c.role = 'provider']) > 0
            THEN distinct_in_order([c.party FOR c IN counterparties IF c.role = 'provider'])
        WHEN len([c FOR c IN counterparties IF c.role = 'landlord']) > 0
            THEN distinct_in_order([c.party FOR c IN counterparties IF c.role = 'landlord'])
        WHEN len([c FOR c IN counterparties IF c.role = 'chip_supplier']) > 0
            THEN distinct_in_order([c.party FOR c IN counterparties IF c.role = 'chip_supplier'])
        ELSE ['self']
    END AS suppliers
FROM bucketed;

-- How each deal of the labs in `scope` counts at (as_of, known_at), from one fold of their
-- events (materialized: the counting reads it twice).
CREATE OR REPLACE MACRO deal_counting_at(as_of, known_at, scope) AS TABLE
WITH folded_states AS MATERIALIZED (
    SELECT * FROM deal_states(as_of, known_at, scope)
)
SELECT * FROM deal_counting_of('folded_states', as_of, known_at, scope);

-- The counting columns of deal_state for `deals` (all when NULL) of the relation named `states`
-- (rebuilt_deal_states, or for a refresh the states of the deals within two links of `deals`),
-- counted from the states of `around` (all when NULL). They are NULL for a deal whose every
-- event is retracted.
CREATE OR REPLACE MACRO deal_counts_of(states, deals := NULL, around := NULL) AS TABLE
SELECT d.deal_id, c.superseded_by, c.parent_deal, c.capacity_in_parent, c.value_in_parent,
       c.chips_in_parent, c.excluded, c.counted_mw, c.counted_usd, c.counted_chips,
       c.operational_mw, c.contracted_mw, c.pipeline_mw, c.rumored_mw, c.committed_usd,
       c.pipeline_usd, c.backing_usd, c.suppliers
FROM (SELECT deal_id FROM query_table(states)
      WHERE deals IS NULL OR list_contains(deals::VARCHAR[], deal_id)) d
LEFT JOIN deal_counting_of(states, deals := around) c USING (deal_id);

-- deal_state as a rebuild makes it: the states, then how each deal counts.
CREATE OR REPLACE MACRO deal_state_rows(states) AS TABLE
SELECT s.*, c.superseded_by, c.parent_deal, c.capacity_in_parent, c.value_in_parent,
       c.chips_in_parent, c.excluded, c.counted_mw, c.counted_usd, c.counted_chips,
       c.operational_mw, c.contracted_mw, c.pipeline_mw, c.rumored_mw, c.committed_usd,
       c.pipeline_usd, c.backing_usd, c.suppliers
FROM query_table(states) s LEFT JOIN deal_counting_of(states) c USING (deal_id);

-- How each deal counts at (as_of, known_at), the columns of deal_counting_of: the maintained
-- table for "now". `scope` is lab_scope(labs), given apart so that a caller can pass it as a
-- constant (pushed into the scan of the log).
CREATE OR REPLACE MACRO deal_counting_scoped(as_of, known_at, labs, scope) AS TABLE
SELECT deal_id, lab, kind, status, title, capacity_mw, value_usd, chips, online_mw,
       counterparties, first_reported_at, last_event_at, events, sources, superseded_by,
       parent_deal, capacity_in_parent, value_in_parent, chips_in_parent, excluded, counted_mw,
       counted_usd, counted_chips, operational_mw, contracted_mw, pipeline_mw, rumored_mw,
       committed_usd, pipeline_usd, backing_usd, suppliers
FROM deal_state
WHERE as_of IS NULL AND known_at IS NULL AND reported
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab))
UNION ALL
SELECT * FROM deal_counting_at(as_of, known_at, scope)
WHERE NOT (as_of IS NULL AND known_at IS NULL)
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab));

-- The same, only what positions add up.
CREATE OR REPLACE MACRO deal_counts_scoped(as_of, known_at, labs, scope) AS TABLE
SELECT deal_id, lab, kind, status, chips, excluded, counted_mw, counted_chips, operational_mw,
       contracted_mw, pipeline_mw, rumored_mw, committed_usd, pipeline_usd, backing_usd, suppliers
FROM deal_state
WHERE as_of IS NULL AND known_at IS NULL AND reported
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab))
UNION ALL
SELECT deal_id, lab, kind, status, chips, excluded, counted_mw, counted_chips, operational_mw,
       contracted_mw, pipeline_mw, rumored_mw, committed_usd, pipeline_usd, backing_usd, suppliers
FROM deal_counting_at(as_of, known_at, scope)
WHERE NOT (as_of IS NULL AND known_at IS NULL)
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab));

-- How each deal of the labs (all when NULL) counts in its lab's position at (as_of, known_at).
CREATE OR REPLACE MACRO deal_counting(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT * FROM deal_counting_scoped(as_of, known_at, labs, lab_scope(labs));

-- MW per supplier of each lab: committed (operational + contracted) and all buckets.
CREATE OR REPLACE MACRO lab_providers(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT lab, supplier AS provider,
       sum((operational_mw + contracted_mw) / len(suppliers)) AS committed_mw,
       sum(counted_mw / len(suppliers)) AS total_mw,
       count(*) AS deals
FROM (SELECT *, unnest(suppliers) AS supplier FROM deal_counting(as_of, known_at, labs)
      WHERE NOT excluded AND counted_mw > 0)
GROUP BY lab, supplier;

-- Chips of signed and operational deals, by vendor and family (counts where reported).
CREATE OR REPLACE MACRO lab_chips(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT lab, chips.vendor AS vendor, coalesce(chips.family, '?') AS family,
       sum(counted_chips) AS chips, count(*) AS deals
FROM deal_counting(as_of, known_at, labs)
WHERE NOT excluded AND chips IS NOT NULL AND status IN ('signed', 'operational')
GROUP BY ALL;

-- Capacity and money by kind of deal.
CREATE OR REPLACE MACRO lab_kinds(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT lab, kind, count(*) AS deals, sum(counted_mw) AS capacity_mw,
       sum(committed_usd + pipeline_usd + backing_usd) AS value_usd
FROM deal_counting(as_of, known_at, labs)
WHERE NOT excluded
GROUP BY ALL;

-- Each lab's position: MW by bucket, dollars, deals, and provider concentration (HHI 0-10000
-- over committed MW by supplier). One fold, shared by the totals and the HHI.
CREATE OR REPLACE MACRO lab_positions(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
WITH c AS (
    SELECT * FROM deal_counts_scoped(as_of, known_at, labs, lab_scope(labs))
), totals AS (
    SELECT lab,
           sum(operational_mw) AS operational_mw,
           sum(contracted_mw) AS contracted_mw,
           sum(pipeline_mw) AS pipeline_mw,
           sum(rumored_mw) AS rumored_mw,
           sum(committed_usd) AS committed_usd,
           sum(pipeline_usd) AS pipeline_usd,
           sum(backing_usd) AS backing_usd,
           count(*) FILTER (WHERE NOT excluded) AS deals
    FROM c GROUP BY lab
), providers AS (
    SELECT lab, supplier, sum((operational_mw + contracted_mw) / len(suppliers)) AS committed_mw
    FROM (SELECT *, unnest(suppliers) AS supplier FROM c WHERE NOT excluded AND counted_mw > 0)
    GROUP BY lab, supplier
), hhi AS (
    SELECT lab,
           CASE WHEN sum(committed_mw) > 0
                THEN sum(power(committed_mw / total, 2)) * 10000 END AS provider_hhi
    FROM (SELECT *, sum(committed_mw) OVER (PARTITION BY lab) AS total FROM providers)
    GROUP BY lab
)
SELECT totals.*, hhi.provider_hhi
FROM totals LEFT JOIN hhi USING (lab);

-- Pairs of deals (usually of different labs) that describe partly the same capacity: a total
-- across labs must count the overlap once. With labs, the pairs with a deal of one of them.
CREATE OR REPLACE MACRO deal_overlaps(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
WITH l AS (
    SELECT * FROM deal_links(as_of, known_at, labs) WHERE relation = 'overlaps'
), c AS (
    SELECT deal_id, lab, counted_mw, excluded
    FROM deal_counting(as_of, known_at,
                       CASE WHEN labs IS NOT NULL THEN list_distinct(list_concat(
                           labs::VARCHAR[],
                           (SELECT list(lab) || list(other_lab) FROM deal_link_events
                            WHERE relation = 'overlaps'
                              AND (list_contains(labs::VARCHAR[], lab)
                                   OR list_contains(labs::VARCHAR[], other_lab))))) END)
    WHERE deal_id IN (SELECT deal_id FROM l UNION SELECT other_deal FROM l)
)
SELECT l.deal_id AS deal_a, a.lab AS lab_a, l.other_deal AS deal_b, b.lab AS lab_b,
       least(a.counted_mw, b.counted_mw) AS overlap_mw, l.linked_at
FROM l
JOIN c a ON a.deal_id = l.deal_id
JOIN c b ON b.deal_id = l.other_deal
WHERE NOT a.excluded AND NOT b.excluded;

-- Stable views for users.
CREATE OR REPLACE VIEW deals AS SELECT * FROM deal_counting_scoped(NULL, NULL, NULL, NULL);
CREATE OR REPLACE VIEW deal_history AS
SELECT e.deal_id, e.seq, e.version, e.event_id, e.type, e.occurred_at, e.recorded_at, e.actor,
       e.source_url, e.source_title, e.lab, e.status, e.capacity_mw, e.value_usd, e.online_mw,
       e.link_relation, e.link_other, e.payload,
       r.event_id IS NOT NULL AS retracted, r.recorded_at AS retracted_at,
       r.payload ->> 'reason' AS retraction_reason
FROM events e
LEFT JOIN events r ON r.type = 'EventRetracted' AND r.target_event_id = e.event_id
WHERE e.deal_id IS NOT NULL;

-- Fill the maintained tables from the log: the statements of
-- store.projections.rebuild_projections, in this order (each table reads the ones before it).
CREATE OR REPLACE TEMP TABLE rebuilt_states AS SELECT * FROM rebuilt_deal_states();
CREATE OR REPLACE TABLE deal_link_events AS
SELECT * FROM rebuilt_deal_link_events('rebuilt_states');
ALTER TABLE deal_link_events ADD PRIMARY KEY (event_id);
CREATE INDEX deal_link_events_deal ON deal_link_events (deal_id);
CREATE OR REPLACE TABLE deal_state AS SELECT * FROM deal_state_rows('rebuilt_states');
DROP TABLE temp.rebuilt_states;
ALTER TABLE deal_state ADD PRIMARY KEY (deal_id);
