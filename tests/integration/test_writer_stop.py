"""Stopping the writer: what was queued before the stop is written, what comes after is refused
with a clear error instead of waiting forever for a writer that is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from store.errors import StoreError
from store.facade import AsyncEventStore
from store.log import EventStore
from tests.factories import make_deal_reported, manual_clock


async def test_an_append_made_while_the_writer_stops_is_refused_not_left_waiting(
    tmp_path: Path,
) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        writer = AsyncEventStore(store)
        writer.start()
        queued = asyncio.create_task(
            writer.append([make_deal_reported("acme-deal-1", lab="openai", capacity_mw=100)])
        )
        stopping = asyncio.create_task(writer.aclose())
        await asyncio.sleep(0)  # the first append is queued, then the stop

        with pytest.raises(StoreError, match="stopping; nothing was written"):
            await asyncio.wait_for(
                writer.append([make_deal_reported("acme-deal-2", lab="meta", capacity_mw=50)]), 5
            )
        await asyncio.wait_for(stopping, 5)

        assert len((await queued).recorded) == 1
        assert [e.stream_id for e in store.read_all()] == ["deal:acme-deal-1"]
        with pytest.raises(StoreError, match="not running"):
            await writer.append([make_deal_reported("acme-deal-3", lab="xai", capacity_mw=10)])
