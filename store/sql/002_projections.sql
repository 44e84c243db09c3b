-- Superseded by 004_read_models.sql, which replaces every object below; kept as it was applied.
-- Projections: deal state, links and lab positions as of a valid time, as known at a known time.
-- Every macro takes (as_of, known_at); NULL means "now" (all that is recorded). Timestamps are
-- compared as TIMESTAMPTZ; pass TIMESTAMPTZ '2026-01-01 23:59:59+00' to include a whole day.

-- Deal events that stand at (as_of, known_at): a retracted event drops out from the moment its
-- retraction is known (the retraction's recorded_at), whatever its valid time.
CREATE MACRO valid_deal_events(as_of := NULL, known_at := NULL, labs := NULL, deals := NULL) AS TABLE
SELECT e.*
FROM events e
-- An anti join on the (small) set of retractions: a correlated NOT EXISTS here cost 2-10x more.
ANTI JOIN (
    SELECT target_event_id FROM events
    WHERE type = 'EventRetracted'
      AND recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
) r ON r.target_event_id = e.event_id
WHERE e.deal_id IS NOT NULL
  AND e.type <> 'EventRetracted'
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], e.lab))
  AND (deals IS NULL OR list_contains(deals::VARCHAR[], e.deal_id))
  AND e.occurred_at <= coalesce(as_of::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
  AND e.recorded_at <= coalesce(known_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ);

-- The fold: each field takes its latest value in valid-time order (ties by seq); counterparties
-- are the latest full list plus those who joined after it; online MW adds up.
CREATE MACRO deal_states(as_of := NULL, known_at := NULL, labs := NULL, deals := NULL) AS TABLE
WITH ev AS (
    -- k orders events by valid time, ties by seq: one HUGEINT compares much faster than a
    -- struct (seq < 2^40, and occurred_at is after 1990 so epoch_us is positive)
    SELECT deal_id, type, lab, kind, status, capacity_mw, value_usd, chips, term_years,
           online_from, location, title, online_mw, counterparties, occurred_at, source_url, seq,
           epoch_us(occurred_at)::HUGEINT * 1099511627776 + seq AS k
    FROM valid_deal_events(as_of, known_at, labs, deals)
), base AS (
    SELECT
        deal_id,
        bool_or(type = 'DealReported') AS reported,
        arg_max(lab, k) FILTER (WHERE lab IS NOT NULL) AS lab,
        arg_max(kind, k) FILTER (WHERE kind IS NOT NULL) AS kind,
        arg_max(status, k) FILTER (WHERE status IS NOT NULL) AS status,
        arg_max(capacity_mw, k) FILTER (WHERE capacity_mw IS NOT NULL) AS capacity_mw,
        arg_max(value_usd, k) FILTER (WHERE value_usd IS NOT NULL) AS value_usd,
        arg_max(chips, k) FILTER (WHERE chips IS NOT NULL) AS chips,
        arg_max(term_years, k) FILTER (WHERE term_years IS NOT NULL) AS term_years,
        arg_max(online_from, k) FILTER (WHERE online_from IS NOT NULL) AS online_from,
        arg_max(location, k) FILTER (WHERE location IS NOT NULL) AS location,
        arg_max(title, k) FILTER (WHERE title IS NOT NULL) AS title,
        sum(online_mw) FILTER (WHERE type = 'CapacityCameOnline') AS online_mw,
        count(*) FILTER (WHERE type = 'CapacityCameOnline') AS online_reports,
        arg_max(counterparties, k)
            FILTER (WHERE counterparties IS NOT NULL AND type <> 'CounterpartyJoined') AS base_cps,
        max(k) FILTER (WHERE counterparties IS NOT NULL AND type <> 'CounterpartyJoined') AS base_k,
        min(occurred_at) AS first_reported_at,
        max(occurred_at) AS last_event_at,
        count(*) AS events,
        count(DISTINCT source_url) AS sources,
        max(seq) AS last_seq
    FROM ev
    GROUP BY deal_id
), joined AS (
    SELECT ev.deal_id, flatten(list(ev.counterparties ORDER BY ev.k)) AS cps
    FROM ev JOIN base USING (deal_id)
    WHERE ev.type = 'CounterpartyJoined' AND (base.base_k IS NULL OR ev.k > base.base_k)
    GROUP BY ev.deal_id
)
SELECT
    base.deal_id, base.reported, base.lab, base.kind, base.status, base.capacity_mw,
    base.value_usd, base.chips, base.term_years, base.online_from, base.location, base.title,
    base.online_mw, base.online_reports,
    list_distinct(list_concat(coalesce(base.base_cps, []), coalesce(joined.cps, [])))
        AS counterparties,
    base.first_reported_at, base.last_event_at, base.events, base.sources, base.last_seq
FROM base LEFT JOIN joined USING (deal_id);

-- The current state of every deal, kept up to date by each append in the same transaction
-- (a maintained table answers "now" in milliseconds where a fold of the log takes ~100x longer).
CREATE TABLE deal_current (
    deal_id           VARCHAR PRIMARY KEY,
    reported          BOOLEAN NOT NULL,
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
    last_seq          BIGINT
);

-- Deal states at (as_of, known_at): the maintained table for "now", the fold otherwise. The
-- planner drops the branch whose condition is false, so "now" never scans the log.
CREATE MACRO deal_states_at(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT * FROM deal_current
WHERE as_of IS NULL AND known_at IS NULL AND reported
  AND (labs IS NULL OR list_contains(labs::VARCHAR[], lab))
UNION ALL
SELECT * FROM deal_states(as_of, known_at, labs)
WHERE NOT (as_of IS NULL AND known_at IS NULL) AND reported;

-- Links between deals that stand at (as_of, known_at); a link applies from its valid time.
CREATE MACRO deal_links(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT deal_id, link_relation AS relation, link_other AS other_deal, occurred_at AS linked_at,
       event_id, source_url
FROM valid_deal_events(as_of, known_at, labs)
WHERE type = 'DealsLinked';

-- How each deal counts in its lab's position (see the README, "How positions are counted"):
-- shelved, cancelled and superseded deals count nowhere; a part of an active parent does not
-- count the measures its parent states (capacity, value, chip count), measure by measure, and
-- its online MW count as the parent's online share; owned capacity with no supplier is "self".
CREATE MACRO deal_counting(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
WITH s AS (
    SELECT * FROM deal_states_at(as_of, known_at, labs)
), l AS (
    SELECT * FROM deal_links(as_of, known_at, labs)
), superseded AS (
    SELECT other_deal AS deal_id, min(deal_id) AS superseded_by
    FROM l WHERE relation = 'supersedes' GROUP BY other_deal
), parents AS (
    SELECT l.deal_id,
           min(p.deal_id) AS parent_deal,
           bool_or(p.capacity_mw IS NOT NULL) AS capacity_in_parent,
           bool_or(p.value_usd IS NOT NULL) AS value_in_parent,
           bool_or(p.chips.count IS NOT NULL) AS chips_in_parent
    FROM l JOIN s p ON p.deal_id = l.other_deal
    WHERE l.relation = 'part_of' AND p.status NOT IN ('shelved', 'cancelled')
    GROUP BY l.deal_id
), flagged AS (
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
), child_online AS (
    -- A part that runs with no MW figure brings its whole capacity live inside the parent.
    SELECT parent_deal AS deal_id,
           sum(CASE WHEN status = 'operational' AND coalesce(online_mw, 0) = 0
                    THEN coalesce(capacity_mw, 0) ELSE coalesce(online_mw, 0) END) AS mw
    FROM flagged WHERE capacity_in_parent AND NOT excluded GROUP BY parent_deal
), measured AS (
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
), bucketed AS (
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
    counted_mw, counted_usd, counted_chips,
    operational_mw,
    CASE WHEN status IN ('signed', 'operational') THEN counted_mw - operational_mw ELSE 0 END
        AS contracted_mw,
    CASE WHEN status IN ('loi', 'negotiating') THEN counted_mw - operational_mw ELSE 0 END
        AS pipeline_mw,
    CASE WHEN status = 'rumored' THEN counted_mw - operational_mw ELSE 0 END AS rumored_mw,
    CASE WHEN status IN ('signed', 'operational')
          AND kind NOT IN ('investment_for_compute', 'guarantee') THEN counted_usd ELSE 0 END
        AS committed_usd,
    CASE WHEN status IN ('loi', 'negotiating')
          AND kind NOT IN ('investment_for_compute', 'guarantee') THEN counted_usd ELSE 0 END
        AS pipeline_usd,
    CASE WHEN status IN ('signed', 'operational')
          AND kind IN ('investment_for_compute', 'guarantee') THEN counted_usd ELSE 0 END
        AS backing_usd,
    -- The parties that supply the capacity: providers, else landlords, else chip suppliers,
    -- else the lab itself ("self"); a deal's MW are split evenly between them.
    CASE
        WHEN len([c FOR c IN counterparties IF c.role = 'provider']) > 0
            THEN list_distinct([c.party FOR c IN counterparties IF c.role = 'provider'])
        WHEN len([c FOR c IN counterparties IF c.role = 'landlord']) > 0
            THEN list_distinct([c.party FOR c IN counterparties IF c.role = 'landlord'])
        WHEN len([c FOR c IN counterparties IF c.role = 'chip_supplier']) > 0
            THEN list_distinct([c.party FOR c IN counterparties IF c.role = 'chip_supplier'])
        ELSE ['self']
    END AS suppliers
FROM bucketed;

-- MW per supplier of each lab: committed (operational + contracted) and all buckets.
CREATE MACRO lab_providers(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT lab, supplier AS provider,
       sum((operational_mw + contracted_mw) / len(suppliers)) AS committed_mw,
       sum(counted_mw / len(suppliers)) AS total_mw,
       count(*) AS deals
FROM (SELECT *, unnest(suppliers) AS supplier FROM deal_counting(as_of, known_at, labs)
      WHERE NOT excluded AND counted_mw > 0)
GROUP BY lab, supplier;

-- Chips of signed and operational deals, by vendor and family (counts where reported).
CREATE MACRO lab_chips(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT lab, chips.vendor AS vendor, coalesce(chips.family, '?') AS family,
       sum(counted_chips) AS chips, count(*) AS deals
FROM deal_counting(as_of, known_at, labs)
WHERE NOT excluded AND chips IS NOT NULL AND status IN ('signed', 'operational')
GROUP BY ALL;

-- Capacity and money by kind of deal.
CREATE MACRO lab_kinds(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
SELECT lab, kind, count(*) AS deals, sum(counted_mw) AS capacity_mw,
       sum(committed_usd + pipeline_usd + backing_usd) AS value_usd
FROM deal_counting(as_of, known_at, labs)
WHERE NOT excluded
GROUP BY ALL;

-- Each lab's position: MW by bucket, dollars, deals, and provider concentration (HHI 0-10000
-- over committed MW by supplier).
CREATE MACRO lab_positions(as_of := NULL, known_at := NULL, labs := NULL) AS TABLE
WITH c AS (
    SELECT * FROM deal_counting(as_of, known_at, labs)
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
), hhi AS (
    SELECT lab,
           CASE WHEN sum(committed_mw) > 0
                THEN sum(power(committed_mw / total, 2)) * 10000 END AS provider_hhi
    FROM (SELECT *, sum(committed_mw) OVER (PARTITION BY lab) AS total
          FROM lab_providers(as_of, known_at, labs))
    GROUP BY lab
)
SELECT totals.*, hhi.provider_hhi
FROM totals LEFT JOIN hhi USING (lab);

-- Pairs of deals (usually of different labs) that describe partly the same capacity: a total
-- across labs must count the overlap once.
CREATE MACRO deal_overlaps(as_of := NULL, known_at := NULL) AS TABLE
SELECT l.deal_id AS deal_a, a.lab AS lab_a, l.other_deal AS deal_b, b.lab AS lab_b,
       least(a.counted_mw, b.counted_mw) AS overlap_mw, l.linked_at
FROM deal_links(as_of, known_at) l
JOIN deal_counting(as_of, known_at) a ON a.deal_id = l.deal_id
JOIN deal_counting(as_of, known_at) b ON b.deal_id = l.other_deal
WHERE l.relation = 'overlaps' AND NOT a.excluded AND NOT b.excluded;

-- Stable views for users.
CREATE VIEW deals AS SELECT * FROM deal_counting();
CREATE VIEW deal_history AS
SELECT e.deal_id, e.seq, e.version, e.event_id, e.type, e.occurred_at, e.recorded_at, e.actor,
       e.source_url, e.source_title, e.lab, e.status, e.capacity_mw, e.value_usd, e.online_mw,
       e.link_relation, e.link_other, e.payload,
       r.event_id IS NOT NULL AS retracted, r.recorded_at AS retracted_at,
       r.payload ->> 'reason' AS retraction_reason
FROM events e
LEFT JOIN events r ON r.type = 'EventRetracted' AND r.target_event_id = e.event_id
WHERE e.deal_id IS NOT NULL;
