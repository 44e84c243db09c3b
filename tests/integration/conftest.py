"""Fixtures for integration tests: a real event store in a DuckDB file under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.clock import ManualClock
from store.log import EventStore
from tests.factories import db_file, manual_clock


@pytest.fixture
def clock() -> ManualClock:
    return manual_clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return db_file(tmp_path)


@pytest.fixture
def store(db_path: Path, clock: ManualClock) -> Iterator[EventStore]:
    with EventStore(db_path, clock=clock) as opened:
        yield opened
