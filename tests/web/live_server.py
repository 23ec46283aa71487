"""A real LatentLoom server on a free port, in a background thread, for the browser tests and bench.

The app comes from the composition root (server.composition.build_app) with the web test pack as an
extra pack, and serves the repository's web/ folder, exactly as ``latentloom serve`` would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web
from support.checkpoint_factory import write_tiny_sd15_checkpoint

from server.composition import build_app
from server.config import Config

from .fake_pack import WebTestPack

START_TIMEOUT = 20.0


class LiveServer:
    def __init__(self, base_dir: Path) -> None:
        self.config = Config(base_dir=base_dir, port=0)
        self.pack = WebTestPack(self.config.folders().output)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-server", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def output_dir(self) -> Path:
        return self.config.folders().output

    async def _start(self) -> int:
        app = build_app(self.config, extra_packs=[self.pack])
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    def start(self) -> LiveServer:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(START_TIMEOUT)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)
        self._loop.close()


@contextmanager
def running(base_dir: Path) -> Iterator[LiveServer]:
    """A started server over ``base_dir``, stopped on leaving the block."""
    server = LiveServer(base_dir).start()
    try:
        yield server
    finally:
        server.stop()


def with_tiny_checkpoint(base_dir: Path, name: str) -> Path:
    """``base_dir`` with the tiny SD1.5-layout checkpoint in models/checkpoints/ under ``name``."""
    (base_dir / "models" / "checkpoints").mkdir(parents=True)
    write_tiny_sd15_checkpoint(base_dir / "models" / "checkpoints" / name)
    return base_dir
