"""The canvas: web/index.html at / and web/'s files statically; a plain page while it is not built."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from aiohttp import web

from server.keys import WEB_ROOT

_NOT_BUILT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>LatentLoom</title></head>
<body>
<h1>LatentLoom</h1>
<p>The server is running, but the canvas is not built yet: there is no <code>web/index.html</code>.</p>
<p>The HTTP API answers under <a href="/api/object_info">/api/</a>.</p>
</body>
</html>
"""

_NO_CACHE = MappingProxyType({"Cache-Control": "no-cache"})


async def index(request: web.Request) -> web.StreamResponse:
    page = request.app[WEB_ROOT] / "index.html"
    if page.is_file():
        return web.FileResponse(page, headers=_NO_CACHE)
    return web.Response(text=_NOT_BUILT_PAGE, content_type="text/html", headers=_NO_CACHE)


def add_web_routes(app: web.Application, *, web_root: Path) -> None:
    """Register / and, when the folder exists, its files. Call after the API routes so those win."""
    app[WEB_ROOT] = web_root
    app.router.add_get("/", index)
    if web_root.is_dir():
        app.router.add_static("/", web_root, append_version=False)
