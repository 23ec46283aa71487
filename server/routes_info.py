"""GET /object_info, /object_info/{node_class} and /system_stats."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.keys import MACHINE_PROBE, REGISTRY
from server.system_stats import system_stats_body


async def get_object_info(request: web.Request) -> web.Response:
    # Combo choices are computed per request (files on disk), so this runs off the event loop.
    info = await asyncio.to_thread(request.app[REGISTRY].object_info)
    return web.json_response(info)


async def get_node_info(request: web.Request) -> web.Response:
    """ComfyUI answers ``{}`` for a node type it does not know."""
    info = await asyncio.to_thread(request.app[REGISTRY].object_info, request.match_info["node_class"])
    return web.json_response(info)


async def get_system_stats(request: web.Request) -> web.Response:
    machine = await asyncio.to_thread(request.app[MACHINE_PROBE])
    return web.json_response(system_stats_body(machine))


ROUTES = (
    web.get("/object_info", get_object_info),
    web.get("/object_info/{node_class}", get_node_info),
    web.get("/system_stats", get_system_stats),
)
