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
