"""The `extract` group: deal extraction throughput over the shared dev corpus, on one core."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Protocol

# The shared corpus sits beside the repository (../shared/corpus/dev from its root).
CORPUS_DEV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev"
# Passes over the corpus per timed run: enough work (~50-100 ms) that timer noise is small.
PASSES = 5


class Recorder(Protocol):
    def add(self, name: str, value: float, unit: str) -> None: ...


def corpus_texts(corpus: Path = CORPUS_DEV) -> list[str] | None:
    """The dev corpus's article texts, or None when the corpus is not there."""
    articles = corpus / "articles"
    paths = sorted(articles.glob("*.txt")) if articles.is_dir() else []
    if not paths:
        return None
    return [p.read_text(encoding="utf-8") for p in paths]


def bench_extract(r: Recorder, runs: int, corpus: Path = CORPUS_DEV) -> None:
    """`extract_articles_per_s`: articles / wall time of `extract_candidates` over every text of
    the corpus, PASSES passes a run, median of `runs` runs after one warm-up pass (which also
    builds the registry's patterns); single-threaded, so one core."""
    from events.extract import extract_candidates

    texts = corpus_texts(corpus)
    if texts is None:
        print(
            f"  extract: skipped, no corpus texts at {corpus}/articles "
            "(the shared corpus is not checked out here)",
            file=sys.stderr,
        )
        return
    for text in texts:
        extract_candidates(text)
    times = []
    deals = 0
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(PASSES):
            for text in texts:
                deals += len(extract_candidates(text))
        times.append(time.perf_counter() - started)
    per_pass = statistics.median(times) / PASSES
    r.add("extract_corpus_articles", float(len(texts)), "articles")
    r.add("extract_corpus_kb", sum(len(t.encode()) for t in texts) / 1024, "KiB")
    r.add("extract_articles_per_s", len(texts) / per_pass, "articles/s")
    r.add("extract_deals_per_pass", deals / (runs * PASSES), "deals")
