"""Unit tests of the positions chart (bot/charts.py): sampling, collection and PNG rendering."""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from bot.charts import (
    MAX_LABS,
    PositionPoint,
    PositionSeries,
    chart_size_px,
    collect_series,
    month_ends,
    render_positions_chart,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class FakeCapacity:
    operational: float = 0.0
    contracted: float = 0.0
    pipeline: float = 0.0
    rumored: float = 0.0


@dataclass(frozen=True)
class FakePosition:
    lab: str
    capacity_mw: FakeCapacity = field(default_factory=FakeCapacity)


def _eod(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 23, 59, 59, 999_999, tzinfo=UTC)


def _growing(lab: str, months: int = 12, scale: float = 1.0) -> PositionSeries:
    dates = month_ends(date(2024, 1, 1), date(2024 + (months - 1) // 12, (months - 1) % 12 + 1, 28))
    return PositionSeries(
        lab=lab,
        points=[
            PositionPoint(
                as_of=d,
                operational_mw=100 * i * scale,
                contracted_mw=150 * i * scale,
                pipeline_mw=80 * (i % 4) * scale,
                rumored_mw=50 * scale,
            )
            for i, d in enumerate(dates)
        ],
    )


def _pixel_size(png: bytes) -> tuple[int, int]:
    height, width = mpimg.imread(BytesIO(png), format="png").shape[:2]
    return width, height


def test_month_ends_are_last_instants_of_each_month_in_utc_ending_at_end() -> None:
    dates = month_ends(date(2024, 1, 15), date(2024, 4, 10))

    assert dates == [_eod(2024, 1, 31), _eod(2024, 2, 29), _eod(2024, 3, 31), _eod(2024, 4, 10)]


def test_month_ends_do_not_repeat_end_when_it_is_a_month_end() -> None:
    assert month_ends(date(2024, 11, 1), date(2024, 12, 31)) == [
        _eod(2024, 11, 30),
        _eod(2024, 12, 31),
    ]


def test_month_ends_of_one_day_is_that_day() -> None:
    assert month_ends(date(2025, 3, 5), date(2025, 3, 5)) == [_eod(2025, 3, 5)]


def test_month_ends_reject_start_after_end() -> None:
    with pytest.raises(ValueError, match="after end"):
        month_ends(date(2025, 2, 1), date(2025, 1, 31))


def test_month_ends_thinning_keeps_first_and_end_in_order() -> None:
    full = month_ends(date(2015, 1, 1), date(2025, 6, 15), max_points=1_000)

    thinned = month_ends(date(2015, 1, 1), date(2025, 6, 15), max_points=12)

    assert len(full) > 12
    assert len(thinned) == 12
    assert thinned[0] == full[0]
    assert thinned[-1] == _eod(2025, 6, 15)
    assert thinned == sorted(set(thinned))
    assert set(thinned) <= set(full)


def test_month_ends_with_one_point_keeps_only_end() -> None:
    assert month_ends(date(2020, 1, 1), date(2025, 6, 15), max_points=1) == [_eod(2025, 6, 15)]


def test_collect_series_calls_positions_once_per_date_for_all_labs() -> None:
    dates = month_ends(date(2025, 1, 1), date(2025, 3, 15))
    calls: list[tuple[list[str], datetime]] = []

    def positions_at(labs: list[str], when: datetime) -> list[FakePosition]:
        calls.append((labs, when))
        return [FakePosition(lab, FakeCapacity(operational=when.month * 10)) for lab in labs]

    series = collect_series(positions_at, ["acme-ai", "globex-ml"], dates)

    assert calls == [(["acme-ai", "globex-ml"], d) for d in dates]
    assert [s.lab for s in series] == ["acme-ai", "globex-ml"]
    assert [p.operational_mw for p in series[0].points] == [10, 20, 30]
    assert [p.as_of for p in series[1].points] == dates


def test_collect_series_counts_a_lab_missing_from_an_answer_as_zero() -> None:
    def positions_at(labs: list[str], when: datetime) -> list[FakePosition]:
        return [FakePosition("acme-ai", FakeCapacity(contracted=500))]

    series = collect_series(positions_at, ["acme-ai", "initech"], [_eod(2025, 1, 31)])

    assert series[0].points[0].contracted_mw == 500
    assert series[1].points[0] == PositionPoint(as_of=_eod(2025, 1, 31))


def test_series_rejects_points_out_of_time_order() -> None:
    with pytest.raises(ValueError, match="increasing"):
        PositionSeries(
            lab="acme-ai",
            points=[PositionPoint(as_of=_eod(2025, 2, 1)), PositionPoint(as_of=_eod(2025, 1, 1))],
        )


def test_chart_of_one_lab_is_a_png_of_embed_size() -> None:
    png = render_positions_chart(
        [_growing("acme-ai")], title="acme-ai: MW by stage", known_at_label="as known at 2025-01-01"
    )

    assert png.startswith(PNG_SIGNATURE)
    assert _pixel_size(png) == chart_size_px(1) == (1000, 560)
    assert len(png) < 1_000_000


def test_chart_of_several_labs_is_taller() -> None:
    labs = [_growing(f"lab-{k}", scale=k + 1) for k in range(MAX_LABS)]

    png = render_positions_chart(labs, title="MW by stage")

    assert png.startswith(PNG_SIGNATURE)
    assert _pixel_size(png) == chart_size_px(MAX_LABS)
    assert chart_size_px(MAX_LABS)[1] > chart_size_px(1)[1]
    assert len(png) < 1_000_000


def test_chart_of_a_lab_holding_nothing_still_renders() -> None:
    empty = PositionSeries(
        lab="initech",
        points=[PositionPoint(as_of=d) for d in month_ends(date(2025, 1, 1), date(2025, 6, 1))],
    )

    png = render_positions_chart([empty, PositionSeries(lab="hooli")], title="MW by stage")

    assert _pixel_size(png) == chart_size_px(2)


def test_chart_of_a_single_date_renders() -> None:
    one = PositionSeries(
        lab="acme-ai", points=[PositionPoint(as_of=_eod(2025, 3, 31), operational_mw=700)]
    )

    assert _pixel_size(render_positions_chart([one], title="MW by stage")) == chart_size_px(1)


def test_chart_of_more_than_six_labs_is_refused() -> None:
    labs = [_growing(f"lab-{k}") for k in range(MAX_LABS + 1)]

    with pytest.raises(ValueError, match="at most 6 labs"):
        render_positions_chart(labs, title="too many")


def test_chart_of_no_labs_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one lab"):
        render_positions_chart([], title="nothing")


def test_chart_bytes_are_the_same_for_the_same_input() -> None:
    series = [_growing("acme-ai"), _growing("globex-ml", scale=2)]

    first = render_positions_chart(series, title="MW by stage", known_at_label="as known at now")
    second = render_positions_chart(series, title="MW by stage", known_at_label="as known at now")

    assert first == second
    assert b"Software" not in first


def test_charts_render_in_worker_threads() -> None:
    series = [_growing("acme-ai")]

    with ThreadPoolExecutor(max_workers=3) as pool:
        pngs = list(pool.map(lambda _: render_positions_chart(series, title="t"), range(3)))

    assert all(p == pngs[0] and p.startswith(PNG_SIGNATURE) for p in pngs)


def test_chart_renders_without_a_display_or_pyplot() -> None:
    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from bot.charts import PositionPoint, PositionSeries, render_positions_chart
        at = datetime(2025, 1, 31, tzinfo=UTC)
        png = render_positions_chart(
            [PositionSeries(lab="acme-ai", points=[PositionPoint(as_of=at, operational_mw=1)])],
            title="t",
        )
        assert png.startswith(b"\\x89PNG"), png[:8]
        assert "matplotlib.pyplot" not in sys.modules
        """
    )
    env = {
        k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"}
    }

    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
