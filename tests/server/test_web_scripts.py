"""/scripts/app.js and /scripts/api.js: the modules web extensions import, served from web/scripts/ as
JavaScript beside the canvas, at the URL an extension's relative import reaches."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest

from server.config import Config

pytestmark = pytest.mark.asyncio

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
JS_TYPES = ("application/javascript", "text/javascript")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The server conftest's config, but serving the repository's real web/ folder."""
    return Config(base_dir=tmp_path, web_root=WEB_ROOT, max_body_mb=1.0)


async def test_the_example_extensions_import_of_app_reaches_scripts_app_js(client):
    extension = Path(__file__).resolve().parents[2] / "custom_nodes" / "example_plugin" / "web" / "contact_sheet.js"
    imported = re.search(r'import \{ app \} from "([^"]+)"', extension.read_text(encoding="utf-8"))
    assert imported, "the example extension no longer imports app"
    url = urljoin("/extensions/example_plugin/contact_sheet.js", imported.group(1))
    assert url == "/scripts/app.js"
    assert (await client.get(url)).status == 200


@pytest.mark.parametrize("name", ["app.js", "api.js"])
async def test_scripts_modules_are_served_as_javascript_with_their_bytes(client, name):
    response = await client.get(f"/scripts/{name}")
    assert response.status == 200
    assert response.content_type in JS_TYPES  # browsers refuse a module of any other type
    assert await response.read() == (WEB_ROOT / "scripts" / name).read_bytes()


async def test_scripts_app_js_shares_the_canvas_module_instead_of_making_its_own(client):
    source = await (await client.get("/scripts/app.js")).text()
    assert 'from "../app/extensions.js"' in source
    assert "export const app = new ExtensionApp();" in source
    canvas_root = await (await client.get("/app/main.js")).text()
    assert 'from "../scripts/app.js"' in canvas_root  # the same URL, so the same module instance
    assert (await client.get("/app/extensions.js")).status == 200
