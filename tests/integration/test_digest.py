"""The weekly digest over a real event store: what a week's news is, reproducibly, within limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.commands.catalog import build_registry
from bot.commands.registry import CommandContext, run_command_line
from bot.digest import (
    MAX_FACTS,
    MAX_TITLE,
    MAX_TOTAL_TEXT,
    answer_text_size,
    build_digest,
    digest_answer,
    digest_chart_png,
)
from bot.errors import UserInputError
from events.parties import default_registry
from store.clock import ManualClock
from store.log import EventStore
from store.queries import Queries
from tests.factories import (
    make_candidate_accepted,
    make_candidate_proposed,
    make_capacity_online,
    make_deal_reported,
    make_retraction,
    make_status_change,
)

# ISO weeks of 2026: W04 = Jan 19-25, W05 = Jan 26 - Feb 1, W06 = Feb 2-8, W07 = Feb 9-15.
JAN_10 = datetime(2026, 1, 10, 12, tzinfo=UTC)
JAN_19 = datetime(2026, 1, 19, 12, tzinfo=UTC)
JAN_20 = datetime(2026, 1, 20, 12, tzinfo=UTC)
JAN_27 = datetime(2026, 1, 27, 12, tzinfo=UTC)
JAN_28 = datetime(2026, 1, 28, 12, tzinfo=UTC)
FEB_03 = datetime(2026, 2, 3, 12, tzinfo=UTC)
FEB_20 = datetime(2026, 2, 20, 12, tzinfo=UTC)


def record_two_weeks(store: EventStore, clock: ManualClock) -> dict[str, object]:
    """W04: openai signs 1 GW, anthropic an LOI; W05: the LOI is signed, capacity comes online,
    a new deal, a late report of an openai deal from January 10, and a candidate proposed."""
    clock.set(JAN_20)
    store.append(
        [
            make_deal_reported("oa-1", lab="openai", capacity_mw=1_000, occurred_at=JAN_19),
            make_deal_reported(
                "an-1", lab="anthropic", status="loi", capacity_mw=500, occurred_at=JAN_19
            ),
        ]
    )
    clock.set(JAN_28)
    late = make_deal_reported("oa-late", lab="openai", capacity_mw=200, occurred_at=JAN_10)
    store.append(
        [
            make_status_change("an-1", "signed", reason="contract signed", occurred_at=JAN_27),
            make_capacity_online("oa-1", 250, occurred_at=JAN_27),
            make_deal_reported(
                "an-2",
                lab="anthropic",
                capacity_mw=300,
                occurred_at=JAN_27,
                title="Anthropic rents 300 MW",
            ),
            late,
            make_candidate_proposed("c1"),
            make_candidate_proposed("c2"),
        ]
    )
    store.append([make_candidate_accepted("c2", "an-2")])
    return {"late": late}


def test_digest_lists_the_weeks_news_with_sources(store: EventStore, clock: ManualClock) -> None:
    record_two_weeks(store, clock)
    clock.set(FEB_03)

    digest = build_digest(Queries(store), "2026-W05", default_registry())
    answer = digest_answer(digest, default_registry())

    assert sorted(i.deal_id for i in digest.new_deals) == ["an-2", "oa-late"]
    assert [i.deal_id for i in digest.status_changes] == ["an-1"]
    assert "loi → signed" in digest.status_changes[0].text
    assert [i.deal_id for i in digest.capacity_online] == ["oa-1"]
    assert digest.pending_candidates == 1
    assert not digest.quiet
    assert {s.url for s in answer.sources} >= {
        "https://news.example.com/an-1",
        "https://news.example.com/an-2",
        "https://news.example.com/oa-1",
        "https://news.example.com/oa-late",
    }


def test_leaderboard_shows_change_since_last_week_and_headline_is_the_largest_mover(
    store: EventStore, clock: ManualClock
) -> None:
    record_two_weeks(store, clock)
    clock.set(FEB_03)

    digest = build_digest(Queries(store), "2026-W05")

    rows = {r.lab: r for r in digest.leaderboard}
    assert rows["anthropic"].previous_mw == 0 and rows["anthropic"].committed_mw == 800
    assert rows["openai"].previous_mw == 1_000 and rows["openai"].committed_mw == 1_200
    assert digest.mover == "anthropic"
    assert "anthropic" in digest.headline.lower() or "Anthropic" in digest.headline


def test_a_late_report_restates_last_week_with_the_reason(
    store: EventStore, clock: ManualClock
) -> None:
    record_two_weeks(store, clock)
    clock.set(FEB_03)

    digest = build_digest(Queries(store), "2026-W05")

    [restated] = digest.restatements
    assert (restated.lab, restated.was_mw, restated.now_mw) == ("openai", 1_000, 1_200)
    assert any("oa-late" in r and "late" in r for r in restated.reasons)
    assert restated.sources == [("oa-late: DealReported", "https://news.example.com/oa-late")]


def test_a_retraction_restates_last_week_with_its_reason(
    store: EventStore, clock: ManualClock
) -> None:
    clock.set(JAN_20)
    wrong = make_deal_reported("oa-1", lab="openai", capacity_mw=1_000, occurred_at=JAN_19)
    store.append([wrong])
    clock.set(JAN_28)
    store.append(
        [make_retraction(wrong, "the article was about a different lab", occurred_at=JAN_28)]
    )

    digest = build_digest(Queries(store), "2026-W05")

    [restated] = digest.restatements
    assert (restated.was_mw, restated.now_mw) == (1_000, 0)
    assert "different lab" in restated.reasons[0]


def test_the_digest_of_a_past_week_is_the_same_whenever_it_is_generated(
    store: EventStore, clock: ManualClock
) -> None:
    made = record_two_weeks(store, clock)
    clock.set(FEB_03)
    first = build_digest(Queries(store), "2026-W05", default_registry())
    store.append(
        [
            make_retraction(made["late"], "duplicate of oa-1", occurred_at=FEB_03),  # type: ignore[arg-type]
            make_deal_reported("oa-2", lab="openai", capacity_mw=5_000, occurred_at=JAN_27),
        ]
    )
    clock.set(FEB_20)

    again = build_digest(Queries(store), "2026-W05", default_registry())

    assert again == first
    assert digest_answer(again, default_registry()) == digest_answer(first, default_registry())


def test_a_quiet_week_says_so_and_still_shows_the_leaderboard(
    store: EventStore, clock: ManualClock
) -> None:
    record_two_weeks(store, clock)
    clock.set(FEB_20)

    digest = build_digest(Queries(store), "2026-W07")
    answer = digest_answer(digest)

    assert digest.quiet
    assert "quiet" in answer.title.lower()
    assert [r.lab for r in digest.leaderboard] == ["openai", "anthropic"]
    assert answer.table is not None and len(answer.table.rows) == 2


def test_a_busy_week_fits_discord_limits_and_its_chart_is_under_8_mb(
    store: EventStore, clock: ManualClock
) -> None:
    clock.set(JAN_28)
    store.append(
        [
            make_deal_reported(
                f"deal-{i}",
                lab=lab,
                capacity_mw=100 + i,
                occurred_at=JAN_27,
                title=f"{lab} compute deal number {i} " + "x" * 150,
                source_url=f"https://news.example.com/{'long-' * 30}{i}",
            )
            for i, lab in enumerate(["openai", "anthropic", "xai", "meta", "microsoft"] * 12)
        ]
    )
    clock.set(FEB_03)
    queries = Queries(store)

    digest = build_digest(queries, "2026-W05", default_registry())
    answer = digest_answer(digest, default_registry())
    png = digest_chart_png(queries, digest)

    assert len(digest.new_deals) == 60
    assert len(answer.title) <= MAX_TITLE
    assert len(answer.facts) <= MAX_FACTS
    assert all(len(f.value) <= 1024 and len(f.name) <= 256 for f in answer.facts)
    assert answer_text_size(answer) <= MAX_TOTAL_TEXT
    assert png is not None and png.startswith(b"\x89PNG") and len(png) < 8 * 1024 * 1024


def test_digest_command_previews_a_week_and_refuses_one_not_over(
    store: EventStore, clock: ManualClock
) -> None:
    record_two_weeks(store, clock)
    clock.set(FEB_03)
    ctx = CommandContext(queries=Queries(store), registry=default_registry(), clock=clock)
    commands = build_registry()

    answer = run_command_line(ctx, commands, "/digest 2026-W05")

    assert answer.command == "digest" and answer.data["week"] == "2026-W05"
    assert run_command_line(ctx, commands, "/digest").data["week"] == "2026-W05"
    with pytest.raises(UserInputError, match="not over"):
        run_command_line(ctx, commands, "/digest 2026-W06")
    with pytest.raises(UserInputError, match="ISO week"):
        run_command_line(ctx, commands, "/digest last-week")


def test_cli_prints_a_past_weeks_digest_as_json(
    db_path: Path,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.cli import main

    with EventStore(db_path, clock=clock) as store:
        record_two_weeks(store, clock)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)

    status = main(["--db", str(db_path), "digest", "--week", "2026-W05", "--as-json"])

    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert data["week"] == "2026-W05" and data["mover"] == "anthropic"


def test_cli_post_without_a_token_says_it_needs_one(
    db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main

    monkeypatch.delenv("DISCORD_TOKEN", raising=False)

    status = main(["--db", str(db_path), "digest", "--week", "2026-W05", "--post"])

    assert status == 2
    assert "needs DISCORD_TOKEN" in capsys.readouterr().err
