"""Plugins written into a temporary custom_nodes/ folder, and a real server that loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from plugin_folder import write_plugins

from server.composition import build_app
from server.config import Config
from server.plugins import PluginSettings


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(base_dir=tmp_path, web_root=tmp_path / "web")


@pytest.fixture
def custom_nodes(config: Config) -> Path:
    return write_plugins(Path(config.base_dir) / "custom_nodes")


@pytest.fixture
def settings() -> PluginSettings:
    return PluginSettings(entry_points=False)


@pytest_asyncio.fixture
async def client(aiohttp_client: Any, config: Config, custom_nodes: Path, settings: PluginSettings) -> TestClient:
    """A client of a real server (127.0.0.1, free port) that discovered the plugins in custom_nodes/."""
    return await aiohttp_client(build_app(config, plugins=settings))
