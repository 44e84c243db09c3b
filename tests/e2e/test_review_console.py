"""Reviewing feed candidates in the local console: /review lists, accept writes, reject doesn't."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.console import run_console
from bot.services import Services, open_services
from tests.factories import make_candidate_proposed

ARTICLE = "https://news.example.com/articles/"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = open_services(tmp_path / "computewatch.duckdb", seed=False)
    opened.store.append([make_candidate_proposed("c0ffee"), make_candidate_proposed("beef01")])
    try:
        yield opened
    finally:
        opened.close()


def console(services: Services, *lines: str) -> str:
    out = io.StringIO()
    run_console(services, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out)
    return out.getvalue()


def test_review_lists_the_pending_candidates(services: Services) -> None:
    out = console(services, "/review")

    assert "Candidates waiting for review (2)" in out
    assert "c0ffee" in out and "beef01" in out


def test_accept_writes_the_deal_events_as_the_console_with_the_article_as_source(
    services: Services,
) -> None:
    out = console(services, "/review accept c0ff", "/review")

    assert "Accepted c0ffee as new_deal of deal xai-oracle-datacenter-lease-2026" in out
    [reported] = [e for e in services.store.read_all() if e.type == "DealReported"]
    assert (reported.actor, reported.source_url) == ("console", ARTICLE + "c0ffee")
    assert "Candidates waiting for review (1)" in out


def test_accept_takes_a_corrected_status(services: Services) -> None:
    console(services, "/review accept c0ffee status:signed")

    [reported] = [e for e in services.store.read_all() if e.type == "DealReported"]
    assert reported.payload.status == "signed"  # type: ignore[attr-defined]


def test_reject_needs_a_reason_and_writes_no_deal_event(services: Services) -> None:
    out = console(services, "/review reject beef01", "/review reject beef01 not a compute deal")

    assert "needs a reason" in out
    assert "Rejected beef01: no deal event was written." in out
    assert services.store.deal_ids() == []
    rejected = [e for e in services.store.read_all() if e.type == "CandidateRejected"]
    assert [(e.stream_id, e.actor) for e in rejected] == [("candidate:beef01", "console")]


def test_deciding_twice_is_refused_and_writes_nothing(services: Services) -> None:
    console(services, "/review reject beef01 duplicate")
    head = services.store.head

    out = console(services, "/review accept beef01")

    assert "rejected by console" in out and "nothing was written" in out
    assert services.store.head == head


def test_an_unknown_candidate_is_explained(services: Services) -> None:
    out = console(services, "/review accept nope")

    assert out.startswith("! no candidate 'nope'")
