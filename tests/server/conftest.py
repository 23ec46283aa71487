"""A real server on a free port with fake nodes (tests/support/server_fakes.py), registered through the
extra-pack hook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient
from support.server_fakes import FakePack

from server.composition import build_app
from server.config import Config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(base_dir=tmp_path, web_root=tmp_path / "web", max_body_mb=1.0)


@pytest.fixture
def fake_pack(config: Config) -> FakePack:
    return FakePack(config.folders().output)


@pytest.fixture
def app(config: Config, fake_pack: FakePack) -> web.Application:
    return build_app(config, extra_packs=[fake_pack])


@pytest_asyncio.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient:
    """A client of the app served on a real TCP port (127.0.0.1, chosen free by the OS)."""
    return await aiohttp_client(app)
