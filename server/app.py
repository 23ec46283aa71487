"""The aiohttp application factory.

``create_app`` only wires objects and routes; nothing starts until the app runs. The background context
(``cleanup_ctx``) owns the worker thread and the websocket hub; ``on_shutdown`` closes open websockets so
that shutdown does not wait on them. Every route answers under /api/ and without the prefix, because
ComfyUI clients use both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from aiohttp import web

from latentloom.api import NodeRegistry
from server import routes_files, routes_history, routes_info, routes_prompt, routes_queue, ws
from server.config import Config
from server.history import History
from server.http_errors import json_errors
from server.hub import WebSocketHub
from server.keys import (
    CONFIG,
    EXECUTOR_FACTORY,
    FOLDERS,
    HISTORY,
    HUB,
    MACHINE_PROBE,
    QUEUE,
    REGISTRY,
    WORKER,
    ExecutorFactory,
)
from server.origin import loopback_origin_guard
from server.queue import PromptQueue
from server.system_stats import MachineProbe
from server.web_root import add_web_routes
from server.worker import PromptWorker

log = logging.getLogger(__name__)

API_ROUTES = (
    *routes_prompt.ROUTES,
    *routes_queue.ROUTES,
    *routes_history.ROUTES,
    *routes_files.ROUTES,
    *routes_info.ROUTES,
    *ws.ROUTES,
)

# How long shutdown waits for a running prompt to notice the interrupt.
WORKER_STOP_SECONDS = 10.0


def create_app(
    config: Config,
    *,
    registry: NodeRegistry,
    executor_factory: ExecutorFactory,
    machine_probe: MachineProbe,
) -> web.Application:
    app = web.Application(
        client_max_size=config.max_body_bytes, middlewares=[json_errors, loopback_origin_guard]
    )
    app[CONFIG] = config
    app[FOLDERS] = config.folders()
    app[REGISTRY] = registry
    app[HISTORY] = History(max_items=config.history_max_items)
    app[MACHINE_PROBE] = machine_probe
    app[EXECUTOR_FACTORY] = executor_factory
    add_api_routes(app.router, API_ROUTES)
    add_web_routes(app, web_root=config.web_root)
    app.cleanup_ctx.append(background_work)
    app.on_shutdown.append(close_websockets)
    return app


def add_api_routes(router: web.UrlDispatcher, routes: Iterable[web.RouteDef]) -> None:
    """Each route twice: under /api and bare (ComfyUI's frontend uses /api, older clients do not)."""
    for route in routes:
        web.RouteDef(route.method, "/api" + route.path, route.handler, route.kwargs).register(router)
        route.register(router)


async def background_work(app: web.Application) -> AsyncIterator[None]:
    """Make the folders, start the hub and the worker thread; stop the worker at cleanup."""
    app[FOLDERS].create()
    hub = WebSocketHub(asyncio.get_running_loop())
    queue = PromptQueue(on_change=hub.post_queue_status)
    executor = app[EXECUTOR_FACTORY]()
    worker = PromptWorker(queue=queue, history=app[HISTORY], executor=executor, publish=hub.post)
    app[HUB] = hub
    app[QUEUE] = queue
    app[WORKER] = worker
    worker.start()
    yield
    stopped = await asyncio.to_thread(worker.stop, timeout=WORKER_STOP_SECONDS)
    if not stopped:
        log.warning("the running prompt ignored the interrupt for %.0f s; abandoning it", WORKER_STOP_SECONDS)


async def close_websockets(app: web.Application) -> None:
    if HUB in app:
        await app[HUB].close_all()
