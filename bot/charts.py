"""Charts of labs' compute positions over valid time, rendered to PNG bytes without a display."""

from __future__ import annotations

import calendar
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from io import BytesIO
from typing import Final, Literal, Protocol, Self

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Bucket = Literal["operational", "contracted", "pipeline", "rumored"]

BUCKETS: Final[tuple[Bucket, ...]] = ("operational", "contracted", "pipeline", "rumored")
"""Stacking order, bottom to top, and legend order, left to right."""

COLOURS: Final[dict[Bucket, str]] = {
    "operational": "#1f4e79",
    "contracted": "#4a90c2",
    "pipeline": "#f0a030",
    "rumored": "#c8c8c8",
}
"""One colour per bucket on every chart: firm capacity in blues, soft capacity in warm or grey."""

MAX_LABS: Final = 6
WIDTH_PX: Final = 1000
FIRST_LAB_HEIGHT_PX: Final = 560
EXTRA_LAB_HEIGHT_PX: Final = 240
DPI: Final = 100

# The Agg canvas is per figure, but matplotlib shares font and text-layout caches between
# figures and does not promise thread safety, so renders from worker threads take turns.
_RENDER_LOCK = threading.Lock()


class PositionPoint(BaseModel):
    """A lab's MW by bucket at valid time as_of (tz-aware)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: AwareDatetime
    operational_mw: float = 0.0
    contracted_mw: float = 0.0
    pipeline_mw: float = 0.0
    rumored_mw: float = 0.0

    def mw(self, bucket: Bucket) -> float:
        """MW in one bucket."""
        return float(getattr(self, f"{bucket}_mw"))


class PositionSeries(BaseModel):
    """One lab's positions at increasing valid times, all read at the same known time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lab: str
    points: list[PositionPoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _points_increase(self) -> Self:
        times = [p.as_of for p in self.points]
        if any(a >= b for a, b in zip(times, times[1:], strict=False)):
            raise ValueError(f"points of {self.lab!r} must be in strictly increasing as_of order")
        return self


class CapacityLike(Protocol):
    """MW by bucket, as `store.queries.Capacity` has it."""

    @property
    def operational(self) -> float: ...
    @property
    def contracted(self) -> float: ...
    @property
    def pipeline(self) -> float: ...
    @property
    def rumored(self) -> float: ...


class PositionLike(Protocol):
    """The part of `store.queries.Position` a chart reads."""

    @property
    def lab(self) -> str: ...
    @property
    def capacity_mw(self) -> CapacityLike: ...


PositionsAt = Callable[[list[str], datetime], Sequence[PositionLike]]
"""Positions of the given labs at valid time `when`; the caller fixes known_at."""


def month_ends(start: date, end: date, max_points: int = 40) -> list[datetime]:
    """Last instants (UTC) of start's month to end's, then end's day; thinned, keeping the ends."""
    if start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    last = _end_of_day(end)
    dates: list[datetime] = []
    year, month = start.year, start.month
    while True:
        stamp = _end_of_day(date(year, month, calendar.monthrange(year, month)[1]))
        if stamp >= last:
            break
        dates.append(stamp)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    dates.append(last)
    return _thin(dates, max_points)


def collect_series(
    positions_at: PositionsAt, labs: Iterable[str], dates: Sequence[datetime]
) -> list[PositionSeries]:
    """One series per lab, in the given order, from one positions_at call per date."""
    wanted = list(dict.fromkeys(labs))
    if not wanted:
        return []
    points: dict[str, list[PositionPoint]] = {lab: [] for lab in wanted}
    for when in dates:
        # A lab missing from an answer holds nothing at that date (Queries never omits one).
        found = {p.lab: p.capacity_mw for p in positions_at(list(wanted), when)}
        for lab in wanted:
            cap = found.get(lab)
            points[lab].append(
                PositionPoint(as_of=when)
                if cap is None
                else PositionPoint(
                    as_of=when,
                    operational_mw=cap.operational,
                    contracted_mw=cap.contracted,
                    pipeline_mw=cap.pipeline,
                    rumored_mw=cap.rumored,
                )
            )
    return [PositionSeries(lab=lab, points=points[lab]) for lab in wanted]


def chart_size_px(labs: int) -> tuple[int, int]:
    """Width and height in pixels of a chart of that many labs."""
    return WIDTH_PX, FIRST_LAB_HEIGHT_PX + EXTRA_LAB_HEIGHT_PX * (labs - 1)


def render_positions_chart(
    series: Sequence[PositionSeries], *, title: str, known_at_label: str | None = None
) -> bytes:
    """A PNG of GW stacked by bucket, a panel per lab; same input, same bytes; no display needed."""
    if not series:
        raise ValueError("a positions chart needs at least one lab")
    if len(series) > MAX_LABS:
        raise ValueError(
            f"a positions chart shows at most {MAX_LABS} labs, got {len(series)}; "
            "split them over several charts"
        )
    width, height = chart_size_px(len(series))
    with _RENDER_LOCK:
        fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
        canvas = FigureCanvasAgg(fig)
        axes = fig.subplots(len(series), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
        top_gw = max((_total_gw(s) for s in series), default=0.0)
        for ax, one in zip(axes, series, strict=True):
            _draw_lab(ax, one)
        _style_axes(list(axes), top_gw)
        dates = {p.as_of for one in series for p in one.points}
        if len(dates) == 1:
            # Autoscaling would stretch a lone bar across the panel; show a quarter around it.
            mid = float(mdates.date2num(dates.pop()))
            axes[-1].set_xlim(mid - 45.0, mid + 45.0)
        handles = [Patch(facecolor=COLOURS[b], label=b) for b in BUCKETS]
        fig.legend(
            handles=handles,
            labels=list(BUCKETS),
            loc="outside lower center",
            ncols=len(BUCKETS),
            frameon=False,
            fontsize=12,
        )
        fig.suptitle(title, fontsize=16, fontweight="bold")
        if known_at_label:
            # An axes label, unlike supxlabel, is laid out clear of the legend below it.
            axes[-1].set_xlabel(known_at_label, loc="right", fontsize=11, color="#555555")
        out = BytesIO()
        # No Software key and no timestamps: identical input gives identical bytes.
        canvas.print_png(out, metadata={"Software": None})
    return out.getvalue()


def _end_of_day(day: date) -> datetime:
    return datetime.combine(date(day.year, day.month, day.day), time.max, tzinfo=UTC)


def _thin(dates: list[datetime], max_points: int) -> list[datetime]:
    n = len(dates)
    if n <= max_points:
        return dates
    if max_points == 1:
        return [dates[-1]]
    # Evenly spaced indices; the step exceeds 1 so rounding never repeats one, and the ends stay.
    picks = [round(i * (n - 1) / (max_points - 1)) for i in range(max_points)]
    return [dates[i] for i in picks]


def _total_gw(series: PositionSeries) -> float:
    return max((sum(p.mw(b) for b in BUCKETS) / 1000 for p in series.points), default=0.0)


def _draw_lab(ax: Axes, series: PositionSeries) -> None:
    ax.set_title(series.lab, loc="left", fontsize=13, fontweight="bold")
    if not series.points:
        ax.text(
            0.5,
            0.5,
            "no data",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            color="#777777",
        )
        return
    # Plot in matplotlib's day numbers (UTC): typed, and the same on every axis.
    xs = [float(mdates.date2num(p.as_of)) for p in series.points]
    layers = [[p.mw(b) / 1000 for p in series.points] for b in BUCKETS]
    colours = [COLOURS[b] for b in BUCKETS]
    if len(xs) == 1:
        # An area over one date has no width, so a single sample is drawn as a stacked bar.
        bottom = 0.0
        for layer, colour in zip(layers, colours, strict=True):
            ax.bar(xs, layer, width=20.0, bottom=bottom, color=colour)
            bottom += layer[0]
    else:
        ax.stackplot(xs, layers, colors=colours, linewidth=0)
    last = series.points[-1]
    committed = (last.operational_mw + last.contracted_mw) / 1000
    total = sum(last.mw(b) for b in BUCKETS) / 1000
    ax.set_title(
        f"{committed:,.1f} GW committed · {total:,.1f} GW all buckets",
        loc="right",
        fontsize=11,
        color="#444444",
    )


def _style_axes(axes: list[Axes], top_gw: float) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8, tz=UTC)
    for ax in axes:
        ax.set_ylim(0, top_gw * 1.08 if top_gw > 0 else 1.0)
        ax.set_ylabel("GW", fontsize=12)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.tick_params(labelsize=11)
        ax.grid(axis="y", color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    bottom = axes[-1]
    bottom.xaxis_date(UTC)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
