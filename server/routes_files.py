"""GET /view (serve a file from output/input/temp) and POST /upload/image."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from server.config import FOLDER_TYPES, Folders
from server.files import (
    NotAnImage,
    UnsafePath,
    check_image_upload,
    resolve_folder_inside,
    resolve_inside,
    sanitize_filename,
    save_new_file,
    split_annotation,
)
from server.http_errors import ApiError
from server.keys import FOLDERS, IMAGE_PROBE


def _folder(folders: Folders, folder_type: str) -> Path:
    folder = folders.by_type(folder_type)
    if folder is None:
        raise ApiError(400, "invalid_request", f"'type' must be one of {', '.join(FOLDER_TYPES)}")
    return folder


def _content_disposition(name: str) -> str:
    """Inline, with an ASCII fallback name and the exact name percent-encoded (RFC 6266)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def _refuse(error: UnsafePath) -> ApiError:
    return ApiError(403, "forbidden_path", str(error))


async def view_file(request: web.Request) -> web.StreamResponse:
    query = request.query
    if not query.get("filename"):
        raise ApiError(400, "invalid_request", "'filename' is required")
    filename, annotated_type = split_annotation(query["filename"])
    root = _folder(request.app[FOLDERS], annotated_type or query.get("type") or "output")
    try:
        path = resolve_inside(root, subfolder=query.get("subfolder", ""), filename=filename)
    except UnsafePath as error:
        raise _refuse(error) from None
    if not path.is_file():
        raise ApiError(404, "not_found", f"no file {filename!r} in that folder")
    return web.FileResponse(path, headers={"Content-Disposition": _content_disposition(path.name)})


async def upload_image(request: web.Request) -> web.Response:
    """Multipart fields: image (the file), type (input by default), subfolder, overwrite ("true"/"1")."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "invalid_request", "send the image as multipart/form-data")
    form = await request.post()
    image = form.get("image")
    if not isinstance(image, web.FileField):
        raise ApiError(400, "invalid_request", "the form needs a file field named 'image'")
    folder_type = str(form.get("type") or "input")
    subfolder = str(form.get("subfolder") or "")
    overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
    root = _folder(request.app[FOLDERS], folder_type)
    try:
        folder = resolve_folder_inside(root, subfolder=subfolder)
        filename = sanitize_filename(image.filename or "")
        data = image.file.read()
        await asyncio.to_thread(check_image_upload, filename, data, probe=request.app[IMAGE_PROBE])
        name = await asyncio.to_thread(save_new_file, folder, filename, data, overwrite=overwrite)
    except UnsafePath as error:
        raise _refuse(error) from None
    except NotAnImage as error:
        raise ApiError(415, "not_an_image", str(error)) from None
    return web.json_response({"name": name, "subfolder": subfolder, "type": folder_type})


ROUTES = (
    web.get("/view", view_file),
    web.post("/upload/image", upload_image),
)
