from __future__ import annotations

import pytest

from .builder import PromptBuilder
from .harness import Harness


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def p() -> PromptBuilder:
    return PromptBuilder()
