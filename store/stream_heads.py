"""The version of each stream and the lab of each deal, as the writer's checks need them, without
a Python dict of every stream (at 10M events, dicts of 2.1M deals took ~600 MB of the ~1.2 GB
an opened store held).

Deals are answered from a compact snapshot of deal_state taken on open: for each deal, the
128-bit MD5 of its id, its version (the count of its `seqs`: every event of the deal the read
models have folded, retractions included) and its lab, in sorted numpy arrays (~45 MB and ~2 s
at 2.1M deals; a lookup ~3 us). The events the read models had not folded when it was taken
(their checkpoint, read in the same transaction), and every write since, are held on top of it
by stream. An import folds its own events: after a large one the snapshot is taken again (on
the next question) instead of holding every stream it wrote. Streams other than deals
(candidates, digests, alerts, drafts: few) are all held.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from store.projections import projected_seq
from store.rows import deal_id_of

SELECT_OTHER_VERSIONS = (
    "SELECT stream_id, max(version) FROM events WHERE deal_id IS NULL GROUP BY stream_id"
)
# md5_number_upper / _lower: the first / last 8 bytes of the MD5 digest, little-endian.
# Labs as their place in $labs (0: none), so that no string crosses into Python.
SELECT_LABS = "SELECT DISTINCT deal_lab FROM deal_state WHERE deal_lab IS NOT NULL ORDER BY 1"
SELECT_SNAPSHOT = (
    "SELECT md5_number_upper(deal_id) AS hi, md5_number_lower(deal_id) AS lo, "
    "len(seqs)::UINTEGER AS version, "
    "coalesce(list_position($labs::VARCHAR[], deal_lab), 0)::USMALLINT AS lab FROM deal_state"
)
# The deal events after the read models' checkpoint: not in deal_state yet.
SELECT_UNFOLDED = (
    "SELECT stream_id, count(*), any_value(lab) FROM events "
    "WHERE seq > $after AND deal_id IS NOT NULL GROUP BY stream_id"
)
# A deal whose id shares its MD5 with another's (never seen; answered from the log itself).
SELECT_STREAM_HEAD = "SELECT count(*), any_value(lab) FROM events WHERE stream_id = $stream"
SELECT_DEAL_IDS = "SELECT deal_id FROM deal_state ORDER BY deal_id"
SELECT_REPORTED_AFTER = (
    "SELECT DISTINCT deal_id FROM events WHERE seq > $after AND type = 'DealReported'"
)
# A write of more streams than this that the read models have folded already (an import)
# drops the snapshot, to be taken again, instead of holding its streams on top of it.
RETAKE_AFTER_STREAMS = 10_000

Head = tuple[int, str | None]  # (version: 0 = no event, lab of the deal: None if not a deal)
NO_HEAD: Head = (0, None)


class StreamHeads:
    """Versions and labs of the log committed so far; only the writer calls wrote().

    Thread-safe: readers may ask from any thread. Every write is recorded (wrote) after its
    commit, so what is held on top of the snapshot is exact; a reader racing a write may get
    the version before it.
    """

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        *,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        folded: Callable[[], int],
    ) -> None:
        self._cursor = cursor
        self._folded = folded  # the seq up to which the read models have folded the log
        self._lock = threading.Lock()  # _others, _written, _snapshot, _taken
        self._take_lock = threading.Lock()  # one snapshot taken at a time
        self._others: dict[str, int] = dict(cur.execute(SELECT_OTHER_VERSIONS).fetchall())
        self._written: dict[str, Head] = {}  # deal stream -> head; lab None: the snapshot's
        self._snapshot: _Snapshot | None = None
        self._taken = 0  # counts the snapshots dropped: one taken before a drop is not kept
        self._snapshot_now()

    # -- answers -----------------------------------------------------------------------------
    def head_of(self, stream_id: str) -> Head:
        """The stream's version (0: no event) and, for a deal, its lab."""
        deal = deal_id_of(stream_id)
        if deal is None:
            with self._lock:
                return self._others.get(stream_id, 0), None
        snapshot = self._snapshot_now()  # first: taking it adds the events it lacks below
        with self._lock:
            held = self._written.get(stream_id)
        if held is not None and held[1] is not None:
            return held
        found = snapshot.get(deal)
        if found is None:
            found = self._from_log(stream_id)
        return (held[0], found[1]) if held is not None else found

    def heads_of(self, streams: Sequence[str]) -> dict[str, Head]:
        """head_of for many streams at once (a bulk import's chunk)."""
        deals = {s: d for s in streams if (d := deal_id_of(s)) is not None}
        found = dict(zip(deals, self._snapshot_now().get_many(list(deals.values())), strict=True))
        out: dict[str, Head] = {}
        with self._lock:
            for s in streams:
                snap = found.get(s, NO_HEAD)
                if s not in deals:
                    out[s] = (self._others.get(s, 0), None)
                elif snap is not None:  # (None: two ids share its digest, asked below)
                    held = self._written.get(s)
                    out[s] = snap if held is None else (held[0], held[1] or snap[1])
        for s in deals:
            if found[s] is None:
                out[s] = self.head_of(s)
        return out

    def deal_ids(self) -> list[str]:
        """Every deal reported, sorted."""
        cur = self._cursor()
        after = self._folded()
        # read first: a deal folded meanwhile is then in deal_state too (and kept once)
        new = {r[0] for r in cur.execute(SELECT_REPORTED_AFTER, {"after": after}).fetchall()}
        ids = [r[0] for r in cur.execute(SELECT_DEAL_IDS).fetchall()]
        for deal in sorted(new):
            i = bisect_left(ids, deal)
            if i == len(ids) or ids[i] != deal:
                ids.insert(i, deal)
        return ids

    # -- the writer --------------------------------------------------------------------------
    def wrote(self, versions: Mapping[str, int], labs: Mapping[str, str], seq: int) -> None:
        """Record a committed write: streams at these versions, new deals of these labs, its
        last event at `seq`."""
        retake = len(versions) > RETAKE_AFTER_STREAMS and seq <= self._folded()
        with self._lock:
            for stream, version in versions.items():
                deal = deal_id_of(stream)
                if deal is None:
                    self._others[stream] = version
                elif retake:
                    self._written.pop(stream, None)
                else:
                    held = self._written.get(stream)
                    lab = labs.get(deal) or (held[1] if held else None)
                    self._written[stream] = (version, lab)
            if retake:  # deal_state has every event of the write: taken again when asked
                self._snapshot = None
                self._taken += 1

    # -- internals ---------------------------------------------------------------------------
    def _snapshot_now(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._take_lock:
            while self._snapshot is None:
                taken = self._taken
                snapshot, unfolded = self._take()
                with self._lock:
                    if self._taken != taken:  # dropped meanwhile: may miss that write
                        continue
                    for stream, head in unfolded.items():
                        held = self._written.get(stream)
                        if held is None or held[0] < head[0]:  # versions only grow
                            self._written[stream] = head
                    self._snapshot = snapshot
            return self._snapshot

    def _take(self) -> tuple[_Snapshot, dict[str, Head]]:
        """deal_state and the events it has not folded yet, in one transaction."""
        cur = self._cursor()
        cur.execute("BEGIN TRANSACTION")
        try:  # (the relation before any fetchone: DuckDB runs none while a result is open)
            labs = [r[0] for r in cur.execute(SELECT_LABS).fetchall()]
            table = cur.sql(SELECT_SNAPSHOT, params={"labs": labs}).to_arrow_table()
            snapshot = _Snapshot(table, labs)
            del table
            pa.default_memory_pool().release_unused()  # the table's ~50 MB, kept for reuse else
            after = projected_seq(cur)
            rows = cur.execute(SELECT_UNFOLDED, {"after": after}).fetchall()
        finally:
            cur.execute("COMMIT")
        unfolded = {}
        for stream, count, lab in rows:
            folded = snapshot.get(deal_id_of(stream))
            if folded is None:  # asked of the log: every event, folded or not
                unfolded[stream] = self._from_log(stream)
            else:
                unfolded[stream] = (folded[0] + count, folded[1] or lab)
        return snapshot, unfolded

    def _from_log(self, stream: str) -> Head:
        count, lab = self._cursor().execute(SELECT_STREAM_HEAD, {"stream": stream}).fetchone()  # type: ignore[misc]
        return (count, lab) if count else NO_HEAD


class _Snapshot:
    """deal_state's deals by the MD5 of their id: sorted keys, versions and lab codes in numpy
    arrays, read one at a time through memoryviews (bisect then runs in C: ~1 us a lookup)."""

    def __init__(self, table: pa.Table, labs: list[str]) -> None:
        self._labs: list[str | None] = [None, *labs]  # by code: 0 is none
        order = np.lexsort((table["lo"].to_numpy(), table["hi"].to_numpy()))
        self._his, self._los, versions, codes = (
            pc.fill_null(table[c], 0).to_numpy()[order] for c in ("hi", "lo", "version", "lab")
        )
        del order
        self._versions_np, self._labs_np = versions, codes
        self._hi, self._lo = memoryview(self._his), memoryview(self._los)
        self._version, self._lab = memoryview(versions), memoryview(codes)
        # Two ids with one digest (never seen): both are asked of the log instead.
        same = (self._his[1:] == self._his[:-1]) & (self._los[1:] == self._los[:-1])
        self._ambiguous = {(int(self._his[i]), int(self._los[i])) for i in np.flatnonzero(same)}

    def get(self, deal: str | None) -> Head | None:
        """The deal's head (NO_HEAD: not in deal_state); None: ask the log."""
        if deal is None:
            return NO_HEAD
        key = _digest(deal)
        if self._ambiguous and key in self._ambiguous:
            return None
        hi, lo = key
        i = bisect_left(self._hi, hi)
        while i < len(self._hi) and self._hi[i] == hi:
            if self._lo[i] == lo:
                return self._version[i], self._labs[self._lab[i]]
            i += 1
        return NO_HEAD

    def get_many(self, deals: list[str]) -> list[Head | None]:
        """get for many deals, the searches vectorised."""
        if not len(self._his):
            return [NO_HEAD] * len(deals)
        keys = [_digest(d) for d in deals]
        want_hi = np.fromiter((k[0] for k in keys), np.uint64, len(keys))
        want_lo = np.fromiter((k[1] for k in keys), np.uint64, len(keys))
        at = np.minimum(np.searchsorted(self._his, want_hi), len(self._his) - 1)
        same_hi = self._his[at] == want_hi
        hit = same_hi & (self._los[at] == want_lo)
        versions = self._versions_np[at].tolist()
        codes = self._labs_np[at].tolist()
        labs = self._labs
        out: list[Head | None] = []
        for n, deal in enumerate(deals):
            if hit[n] and not (self._ambiguous and keys[n] in self._ambiguous):
                out.append((versions[n], labs[codes[n]]))
            elif same_hi[n]:  # the high half is there: look further, as get does
                out.append(self.get(deal))
            else:
                out.append(NO_HEAD)
        return out


def _digest(deal: str) -> tuple[int, int]:
    """The two halves of the MD5 of a deal id, as DuckDB's md5_number_upper / _lower."""
    # (a lone surrogate, which no stored id holds, must not raise: it is just not found)
    d = hashlib.md5(deal.encode(errors="surrogatepass")).digest()  # noqa: S324 - not security
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")
