"""GET /view and POST /upload/image: only files inside output/input/temp, never a way out; the web root."""

from __future__ import annotations

import io

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from server.composition import build_app
from server.config import Config

pytestmark = pytest.mark.asyncio


@pytest.fixture
def secret(tmp_path):
    """A file beside the base dir's folders that no request may read."""
    path = tmp_path / "secret.txt"
    path.write_text("top secret")
    return path


@pytest.fixture
def output_file(config):
    folders = config.folders()
    folders.create()
    (folders.output / "sub").mkdir()
    (folders.output / "sub" / "picture.png").write_bytes(b"\x89PNG fake bytes")
    return folders.output / "sub" / "picture.png"


async def test_view_serves_a_real_output_file_with_its_bytes(client, output_file):
    response = await client.get("/api/view", params={"filename": "picture.png", "subfolder": "sub"})
    assert response.status == 200
    assert await response.read() == b"\x89PNG fake bytes"
    assert 'filename="picture.png"' in response.headers["Content-Disposition"]
    annotated = await client.get("/view", params={"filename": "picture.png [output]", "subfolder": "sub"})
    assert annotated.status == 200


@pytest.mark.parametrize(
    "query",
    [
        "filename=../secret.txt",
        "filename=secret.txt&subfolder=..",
        "filename=secret.txt&subfolder=sub/../..",
        "filename=%2e%2e%2fsecret.txt",
        "filename=%252e%252e%252fsecret.txt",
        "filename=secret.txt&subfolder=%2e%2e",
        "filename=..%5csecret.txt",
        "filename=sub%5c..%5c..%5csecret.txt",
        "filename={secret}",
        "filename=secret.txt&subfolder={parent}",
        "filename=picture.png&type=models",
        "filename=secret.txt%00.png",
    ],
)
async def test_view_refuses_every_way_out_of_its_folders(client, output_file, secret, query):
    query = query.format(secret=secret, parent=secret.parent)
    response = await client.get(f"/api/view?{query}")
    assert 400 <= response.status < 500
    assert "error" in await response.json()
    assert b"top secret" not in await response.read()


async def test_view_refuses_a_symlink_leading_out_and_follows_one_staying_inside(client, config, secret):
    folders = config.folders()
    folders.create()
    (folders.output / "escape.txt").symlink_to(secret)
    (folders.output / "real.txt").write_text("inside")
    (folders.output / "alias.txt").symlink_to(folders.output / "real.txt")
    (folders.output / "linked_dir").symlink_to(secret.parent)

    escaped = await client.get("/view", params={"filename": "escape.txt"})
    assert escaped.status == 403
    through_dir = await client.get("/view", params={"filename": "secret.txt", "subfolder": "linked_dir"})
    assert through_dir.status == 403
    alias = await client.get("/view", params={"filename": "alias.txt"})
    assert alias.status == 200 and await alias.text() == "inside"


async def test_view_of_a_missing_file_is_404_json(client, config):
    config.folders().create()
    response = await client.get("/view", params={"filename": "nothing.png", "type": "temp"})
    assert response.status == 404 and (await response.json())["error"]["type"] == "not_found"


def _png(shade: int) -> bytes:
    """A real 2x2 PNG (uploads must be the images they claim to be); ``shade`` makes its bytes differ."""
    buffer = io.BytesIO()
    Image.new("L", (2, 2), shade).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_form(data: bytes, filename: str, **fields: str) -> aiohttp.FormData:
    # Sent as browsers send it: the file name unescaped in the part's header.
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("image", data, filename=filename, content_type="image/png")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def test_an_uploaded_image_round_trips_through_view(client):
    form = _image_form(_png(1), "cat.png", subfolder="pets")
    response = await client.post("/api/upload/image", data=form)
    assert response.status == 200
    assert await response.json() == {"name": "cat.png", "subfolder": "pets", "type": "input"}
    view = await client.get("/api/view", params={"filename": "cat.png", "subfolder": "pets", "type": "input"})
    assert await view.read() == _png(1)


async def test_uploads_never_overwrite_unless_asked_and_reuse_identical_files(client, config):
    async def upload(data: bytes, **fields: str) -> str:
        response = await client.post("/upload/image", data=_image_form(data, "dog.png", **fields))
        assert response.status == 200
        return (await response.json())["name"]

    assert await upload(_png(10)) == "dog.png"
    assert await upload(_png(20)) == "dog (1).png"
    assert await upload(_png(30)) == "dog (2).png"
    assert await upload(_png(20)) == "dog (1).png"  # identical bytes: the existing file is reused
    assert await upload(_png(40), overwrite="true") == "dog.png"
    input_dir = config.folders().input
    assert (input_dir / "dog.png").read_bytes() == _png(40)
    assert (input_dir / "dog (1).png").read_bytes() == _png(20)
    assert sorted(p.name for p in input_dir.iterdir()) == ["dog (1).png", "dog (2).png", "dog.png"]


@pytest.mark.parametrize(
    ("fields", "filename"),
    [
        ({"subfolder": "../outside"}, "x.png"),
        ({"subfolder": "/tmp"}, "x.png"),
        ({"type": "models"}, "x.png"),
        ({}, ".."),
    ],
)
async def test_uploads_that_would_leave_their_folder_are_refused(client, tmp_path, fields, filename):
    response = await client.post("/upload/image", data=_image_form(b"data", filename, **fields))
    assert 400 <= response.status < 500
    assert "error" in await response.json()
    assert not (tmp_path / "outside").exists() and not (tmp_path / "x.png").exists()


async def test_an_upload_with_a_path_in_its_filename_keeps_only_the_name(client, config):
    response = await client.post("/upload/image", data=_image_form(_png(50), "..\\..\\evil<1>.png"))
    assert (await response.json())["name"] == "evil_1_.png"
    assert (config.folders().input / "evil_1_.png").read_bytes() == _png(50)


async def test_an_upload_without_an_image_field_is_400(client):
    form = aiohttp.FormData()
    form.add_field("type", "input")
    response = await client.post("/upload/image", data=form)
    assert response.status == 400
    not_multipart = await client.post("/upload/image", json={"image": "x"})
    assert not_multipart.status == 400


async def test_the_canvas_is_served_from_the_web_root_when_it_exists(aiohttp_client, tmp_path, fake_pack):
    web_root = tmp_path / "canvas"
    web_root.mkdir()
    (web_root / "index.html").write_text("<html>canvas</html>")
    (web_root / "app.js").write_text("console.log('hi')")
    app: web.Application = build_app(Config(base_dir=tmp_path, web_root=web_root), extra_packs=[fake_pack])
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "<html>canvas</html>"
    assert await (await client.get("/app.js")).text() == "console.log('hi')"
    assert (await client.get("/api/object_info/TestAdd")).status == 200
    assert (await client.get("/../secret.txt")).status == 404
