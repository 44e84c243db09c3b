"""Synthetic event logs for the benchmarks, generated in DuckDB SQL and cached on disk by size.

The rows follow store.rows exactly (column order, typed columns, payload JSON as payload_json
writes it); `check_sample` proves that on a sample by reparsing each payload with pydantic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from events.envelope import NewEvent
from events.payloads import PAYLOAD_TYPES
from store.log import EventStore
from store.projections import rebuild_projections
from store.rows import ARROW_SCHEMA, COLUMNS, STAGED_SCHEMA, payload_json, typed_columns

RESULTS = Path(__file__).resolve().parent / "results"
LABS = (
    "openai",
    "anthropic",
    "xai",
    "meta",
    "microsoft",
    "google",
    "mistral",
    "ssi",
    "inflection",
    "poolside",
)
COUNTERPARTIES = (
    "google",
    "amazon",
    "oracle",
    "coreweave",
    "nebius",
    "microsoft",
    "nvidia",
    "amd",
    "broadcom",
    "crusoe",
)
# The store's clock during a benchmark import: after every generated valid time.
IMPORT_NOW = datetime(2027, 1, 1, tzinfo=UTC)
VERSION = 4  # 4: the events table of migration 005 (unique indexes)
DIRECT_FROM = 5_000_000  # bump when the generator changes, so that stale caches are not reused


def _sql_list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{s}'" for s in items) + "]"


# Deterministic pseudo-random numbers: u(x, salt) is uniform in [0, 1).
_U = "((hash({x}, {salt}) % 1000003) / 1000003.0)"


def u(x: str, salt: int) -> str:
    return _U.format(x=x, salt=salt)


def generation_sql(n_events: int) -> str:
    """A query whose rows are a log of about n_events events, in the events table's layout."""
    n_deals = max(round(n_events / 4.74), 10)  # 4.74 events a deal on average
    labs, cps = _sql_list(LABS), _sql_list(COUNTERPARTIES)
    kinds = _sql_list(
        (
            "cloud_contract",
            "datacenter_lease",
            "chip_purchase",
            "owned_build",
            "capacity_partnership",
            "cloud_contract",
            "datacenter_lease",
            "investment_for_compute",
            "guarantee",
            "power_supply",
        )
    )
    statuses = _sql_list(
        ("rumored", "negotiating", "loi", "signed", "signed", "operational", "shelved", "cancelled")
    )
    roles = _sql_list(("provider", "provider", "landlord", "chip_supplier", "partner", "financier"))
    families = _sql_list(("H100", "GB200", "MI300X", "TPU v5p", "Trainium2", "B200"))
    vendors = _sql_list(("nvidia", "nvidia", "amd", "google", "amazon", "nvidia"))
    span_days = 1095  # 2023-01-01 .. 2025-12-31: when deals are first reported
    return f"""
WITH deals AS (
    SELECT d,
           {labs}[1 + d % 10] AS lab,
           {labs}[1 + d % 10] || '-' || lpad(d::VARCHAR, 8, '0') AS deal_id,
           TIMESTAMPTZ '2023-01-01 00:00:00+00'
               + to_days((d * {span_days} // {n_deals})::INTEGER) AS t0,
           -- extra events per deal: 0..8, mean ~4 (about 5 events a deal)
           CASE WHEN {u("d", 1)} < 0.06 THEN 0 ELSE 1 + floor({u("d", 2)} * 7)::INTEGER END
               AS n_extra
    FROM range({n_deals}) r(d)
), ev0 AS (
    SELECT d, lab, deal_id, t0, j,
           {u("d * 16 + j", 3)} AS p
    FROM deals, range(0, 9) s(j)
    WHERE j <= n_extra
), ev1 AS (
    SELECT *,
           CASE WHEN j = 0 THEN 'DealReported'
                WHEN p < 0.30 THEN 'DealStatusChanged'
                WHEN p < 0.52 THEN 'DealTermsRevised'
                WHEN p < 0.77 THEN 'SourceAdded'
                WHEN p < 0.92 THEN 'CapacityCameOnline'
                WHEN p < 0.955 AND d >= 10 THEN 'DealsLinked'
                WHEN p >= 0.96 AND j >= 2 THEN 'EventRetracted'
                ELSE 'SourceAdded' END AS type0,
           -- valid time: the report date, then 1-40 days between events (all before 2026-12)
           t0 + to_days((sum(CASE WHEN j = 0 THEN 0 ELSE 1 + floor({u("d * 16 + j", 4)} * 40)
                                 END::INTEGER) OVER (PARTITION BY d ORDER BY j))::BIGINT)
               AS occurred_at
    FROM ev0
), ev2 AS (
    -- a retraction retracts the event just before it, unless that is itself a retraction
    SELECT *,
           CASE WHEN type0 = 'EventRetracted'
                     AND lag(type0) OVER (PARTITION BY d ORDER BY j)
                         IN ('EventRetracted', 'DealReported')
                THEN 'SourceAdded' ELSE type0 END AS type
    FROM ev1
), ordered AS (
    SELECT *,
           -- known 0-20 h after it happened (less than the 1-day gap, so a stream's versions
           -- follow seq); a deal's first report is known at once, so that links find it
           occurred_at + to_microseconds(CASE WHEN j = 0 THEN 0
               ELSE floor({u("d * 16 + j", 5)} * 20 * 3600e6)::BIGINT END) AS r
    FROM ev2
), seqd AS (
    SELECT *, row_number() OVER (ORDER BY r, d, j) AS seq FROM ordered
), ided AS (
    SELECT *,
           lpad(lower(hex(epoch_ms(r))), 12, '0') AS h,
           md5(seq::VARCHAR) AS m
    FROM seqd
), ev AS (
    SELECT *,
           substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(m, 1, 3) || '-'
               || ['8', '9', 'a', 'b'][1 + (hash(seq) % 4)::INTEGER] || substr(m, 4, 3) || '-'
               || lpad(lower(hex(seq)), 12, '0') AS event_id
    FROM ided
), full_ev AS (
    SELECT ev.*,
           CASE WHEN ev.type = 'EventRetracted'
                THEN lag(ev.event_id) OVER (PARTITION BY ev.d ORDER BY ev.j) END AS target,
           {u("seq", 6)} AS q,
           {u("seq", 7)} AS q2,
           {u("seq", 8)} AS q3
    FROM ev
), typed AS (
    SELECT seq, event_id, d, j, type, occurred_at, r, deal_id, lab, target, q, q2, q3,
           CASE WHEN type IN ('DealReported', 'DealTermsRevised')
                     AND (type = 'DealReported' OR q < 0.3)
                THEN {kinds}[1 + (hash(d * 16 + j, 11) % 10)::INTEGER] END AS kind,
           CASE WHEN type = 'DealReported' THEN {statuses}[1 + (hash(d, 12) % 4)::INTEGER]
                WHEN type = 'DealStatusChanged' THEN {statuses}[1 + (hash(seq, 13) % 8)::INTEGER]
           END AS status,
           CASE WHEN (type = 'DealReported' AND q < 0.85)
                  OR (type = 'DealTermsRevised' AND q2 < 0.6)
                THEN (10 + floor({u("seq", 14)} * 500) * 10)::DOUBLE END AS capacity_mw,
           CASE WHEN (type = 'DealReported' AND q2 < 0.7)
                  OR (type = 'DealTermsRevised' AND q3 < 0.4)
                THEN (floor({u("seq", 15)} * 50000) * 1e6)::DOUBLE END AS value_usd,
           CASE WHEN type IN ('DealReported', 'DealTermsRevised') AND q3 < 0.25
                THEN {{'vendor': {vendors}[1 + (hash(seq, 16) % 6)::INTEGER],
                       'family': {families}[1 + (hash(seq, 16) % 6)::INTEGER],
                       'count': (1000 * (1 + hash(seq, 17) % 400))::BIGINT}} END AS chips,
           CASE WHEN type IN ('DealReported', 'DealTermsRevised') AND q < 0.2
                THEN (1 + hash(seq, 18) % 15)::DOUBLE END AS term_years,
           CASE WHEN type = 'DealReported' AND q2 < 0.3
                THEN (2024 + hash(seq, 19) % 4)::VARCHAR END AS online_from,
           CASE WHEN type = 'DealReported' AND q3 < 0.4
                THEN ['Abilene, Texas', 'New Carlisle, Indiana', 'Ohio', 'Norway', 'Memphis']
                     [1 + (hash(seq, 20) % 5)::INTEGER] END AS location,
           CASE WHEN type = 'DealReported' THEN 'Synthetic deal ' || deal_id END AS title,
           CASE WHEN type = 'CapacityCameOnline' AND q < 0.9
                THEN (10 + floor({u("seq", 21)} * 100) * 10)::DOUBLE END AS online_mw,
           CASE WHEN type = 'DealReported' OR (type = 'DealTermsRevised' AND q < 0.15)
                THEN list_filter(
                    [{{'party': {cps}[1 + (hash(d, 22) % 10)::INTEGER],
                       'role': {roles}[1 + (hash(d, 23) % 6)::INTEGER]}},
                     {{'party': {cps}[1 + (hash(d, 24) % 10)::INTEGER],
                       'role': {roles}[1 + (hash(d, 25) % 6)::INTEGER]}}]
                        [1:(1 + (hash(seq, 26) % 2)::INTEGER)],
                    lambda c: c.party <> lab) END AS counterparties0,
           CASE WHEN type = 'DealsLinked'
                THEN ['part_of', 'supersedes', 'overlaps'][1 + (hash(seq, 27) % 3)::INTEGER]
           END AS link_relation,
           CASE WHEN type = 'DealsLinked'
                THEN {labs}[1 + d % 10] || '-'
                     || lpad((d - 10 * (1 + hash(seq, 28) % 20 % (d // 10)))::VARCHAR, 8, '0')
           END AS link_other
    FROM full_ev
), rows AS (
    SELECT *,
           -- the party list dedups the same counterparty named twice
           CASE WHEN counterparties0 IS NOT NULL THEN list_distinct(counterparties0)
                    .list_sort() END AS counterparties
    FROM typed
)
SELECT
    seq::BIGINT AS seq,
    event_id,
    'deal:' || deal_id AS stream_id,
    row_number() OVER (PARTITION BY d ORDER BY j)::INTEGER AS version,
    type,
    1::SMALLINT AS schema,
    occurred_at,
    r AS recorded_at,
    CASE WHEN q < 0.5 THEN 'import:bench.jsonl' ELSE 'feed:bench-feed' END AS actor,
    CASE WHEN type <> 'EventRetracted'
         THEN 'https://news.example.com/' || deal_id || '/' || j END AS source_url,
    CASE WHEN type <> 'EventRetracted' THEN 'Report ' || j || ' on ' || deal_id END
        AS source_title,
    CASE WHEN q3 < 0.2 THEN 'bench:' || deal_id || ':' || j ELSE event_id END AS idempotency_key,
    '{{' || concat_ws(',',
        CASE type
        WHEN 'DealReported' THEN concat_ws(',',
            '"lab":' || to_json(lab), '"kind":' || to_json(kind), '"status":' || to_json(status),
            '"counterparties":' || to_json(counterparties),
            '"capacity_mw":' || to_json(capacity_mw), '"value_usd":' || to_json(value_usd),
            '"chips":' || to_json(chips), '"term_years":' || to_json(term_years),
            '"online_from":' || to_json(online_from), '"location":' || to_json(location),
            '"title":' || to_json(title), '"date_precision":"day"')
        WHEN 'DealTermsRevised' THEN concat_ws(',',
            '"kind":' || to_json(kind),
            '"capacity_mw":' || to_json(coalesce(capacity_mw,
                CASE WHEN kind IS NULL AND value_usd IS NULL AND chips IS NULL
                          AND term_years IS NULL AND counterparties IS NULL THEN 100.0 END)),
            '"value_usd":' || to_json(value_usd), '"chips":' || to_json(chips),
            '"term_years":' || to_json(term_years),
            '"counterparties":' || to_json(counterparties), '"date_precision":"day"')
        WHEN 'DealStatusChanged' THEN concat_ws(',',
            '"status":' || to_json(status),
            CASE WHEN q2 < 0.3 THEN '"reason":"synthetic status change"' END,
            '"date_precision":"day"')
        WHEN 'CapacityCameOnline' THEN concat_ws(',',
            '"mw":' || to_json(online_mw), '"date_precision":"day"')
        WHEN 'SourceAdded' THEN CASE WHEN q2 < 0.5 THEN '"note":"corroborated"' END
        WHEN 'DealsLinked' THEN concat_ws(',',
            '"relation":' || to_json(link_relation), '"other_deal":' || to_json(link_other))
        WHEN 'EventRetracted' THEN concat_ws(',',
            '"event_id":' || to_json(target), '"reason":"wrong figure in the report"')
        END) || '}}' AS payload,
    deal_id,
    lab,
    kind,
    status,
    CASE WHEN type = 'DealTermsRevised' AND kind IS NULL AND value_usd IS NULL
              AND chips IS NULL AND term_years IS NULL AND counterparties IS NULL
         THEN coalesce(capacity_mw, 100.0) ELSE capacity_mw END AS capacity_mw,
    value_usd,
    chips,
    term_years,
    online_from,
    location,
    title,
    online_mw,
    counterparties,
    link_relation,
    link_other,
    target AS target_event_id
FROM rows
ORDER BY seq
"""


def log_path(n_events: int) -> Path:
    return RESULTS / f"synth_v{VERSION}_{n_events}.parquet"


def ensure_log(n_events: int) -> Path:
    """The cached parquet file of a synthetic log of about n_events events (made if missing)."""
    path = log_path(n_events)
    if path.exists():
        return path
    RESULTS.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tmp = path.with_suffix(".tmp")
    con.execute(
        f"COPY ({generation_sql(n_events)}) TO '{tmp}' (FORMAT parquet, ROW_GROUP_SIZE 122880)"
    )
    con.close()
    tmp.rename(path)
    return path


def read_full(n_events: int) -> pa.Table:
    """The log's rows as the events table holds them (seq, version, recorded_at assigned)."""
    return pq.read_table(ensure_log(n_events)).cast(ARROW_SCHEMA)


def to_staged(full: pa.Table) -> pa.Table:
    """What a caller hands the bulk import: no seq/version/recorded_at, lab on DealReported only."""
    is_reported = pa.compute.equal(full["type"], "DealReported")
    lab = pa.compute.if_else(is_reported, full["lab"], pa.scalar(None, pa.string()))
    cols = {name: full[name] for name in STAGED_SCHEMA.names if name in full.column_names}
    cols["lab"] = lab
    cols["expected_version"] = pa.nulls(len(full), pa.int32())
    return pa.table([cols[n] for n in STAGED_SCHEMA.names], schema=STAGED_SCHEMA)


def staged_chunks(n_events: int) -> Iterator[pa.Table]:
    """The log's Parquet file read row group by row group (ROW_GROUP_SIZE of ensure_log: one
    row group of DuckDB too), each staged as a caller would stage it. Nothing read is held here
    while the next row group is read (iter_batches held two: ~50 MB more)."""
    parquet = pq.ParquetFile(ensure_log(n_events), pre_buffer=False)
    for i in range(parquet.num_row_groups):
        yield to_staged(parquet.read_row_group(i).cast(ARROW_SCHEMA))


def jsonl_path(n_events: int) -> Path:
    return RESULTS / f"synth_v{VERSION}_{n_events}.jsonl"


def ensure_jsonl(n_events: int) -> Path:
    """The log as the project's event JSONL (what `computewatch import` reads), cached."""
    path = jsonl_path(n_events)
    if path.exists():
        return path
    parquet = ensure_log(n_events)
    tmp = path.with_suffix(".tmp")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""
        COPY (
            SELECT event_id, stream_id, type, schema,
                   strftime(occurred_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS occurred_at, actor,
                   source_url, source_title,
                   CASE WHEN idempotency_key <> event_id THEN idempotency_key END
                       AS idempotency_key,
                   payload::JSON AS payload
            FROM read_parquet('{parquet}') ORDER BY seq
        ) TO '{tmp}' (FORMAT json)
        """
    )
    con.close()
    tmp.rename(path)
    return path


def check_sample(full: pa.Table, k: int = 500) -> int:
    """Reparse k random rows with pydantic; raise if a row differs from what the store writes."""
    rng = random.Random(7)
    idx = sorted(rng.sample(range(len(full)), min(k, len(full))))
    rows = full.take(idx).to_pylist()
    for row in rows:
        payload = PAYLOAD_TYPES[row["type"]].model_validate_json(row["payload"])
        if payload_json(payload) != row["payload"]:
            raise AssertionError(
                f"payload text differs: {row['payload']} vs {payload_json(payload)}"
            )
        for col, value in typed_columns(payload).items():
            if row[col] != value:
                raise AssertionError(f"seq {row['seq']}: {col} {row[col]!r} != {value!r}")
        NewEvent(
            stream_id=row["stream_id"],
            payload=payload,
            occurred_at=row["occurred_at"],
            actor=row["actor"],
            source_url=row["source_url"],
            source_title=row["source_title"],
            event_id=row["event_id"],
            idempotency_key=None
            if row["idempotency_key"] == row["event_id"]
            else row["idempotency_key"],
        )
    return len(rows)


def db_path(n_events: int) -> Path:
    return RESULTS / f"log_v{VERSION}_{n_events}.duckdb"


def ensure_db(n_events: int) -> Path:
    """A store database holding the synthetic log, with deal_current rebuilt (cached)."""
    path = db_path(n_events)
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    EventStore(tmp).close()  # creates the schema through the store's migrations
    con = duckdb.connect(str(tmp))
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    casts = ", ".join(f"{c}::UUID" if c in ("event_id", "target_event_id") else c for c in COLUMNS)
    if n_events >= DIRECT_FROM:  # too big to go through a parquet file and Arrow: SQL directly
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"INSERT INTO events SELECT {casts} FROM ({generation_sql(n_events)})")
    else:
        parquet = ensure_log(n_events)
        con.execute(
            f"INSERT INTO events SELECT {casts} FROM read_parquet('{parquet}') ORDER BY seq"
        )
    rebuild_projections(con)
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(path)
    print(f"  built {path.name} in {time.perf_counter() - t0:.1f} s")
    return path
