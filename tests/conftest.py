"""Root test configuration.

Its presence makes pytest put tests/ on sys.path, so test files import helpers as ``support.<module>``
without tests/__init__.py files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.shared import shared_dir as _shared_dir


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared reference folder beside the repository (or $LATENTLOOM_SHARED)."""
    return _shared_dir()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that drive the browser run last, in their collected order: Playwright's sync API keeps an event loop
    running for the rest of the session, and an asyncio test after it fails ("Runner.run() cannot be called from a
    running event loop") whichever folder it lives in."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
