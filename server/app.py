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
from server import (
    plugins,
    routes_files,
    routes_history,
    routes_info,
    routes_prompt,
    routes_queue,
    routes_workflow,
    ws,
)
from server.auth import needs_token, token_middleware
from server.config import Config
from server.files import ImageProbe, sniff_image_format
from server.history import History
from server.http_errors import json_errors
from server.hub import WebSocketHub
from server.keys import (
    CONFIG,
    EXECUTOR_FACTORY,
    FOLDERS,
    HISTORY,
    HUB,
    IMAGE_PROBE,
    MACHINE_PROBE,
    QUEUE,
    REGISTRY,
    STORE,
    WORKER,
    ExecutorFactory,
)
from server.origin import guard_middleware
from server.queue import PromptQueue
from server.recovery import resume
from server.store import PromptStore
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
    *routes_workflow.ROUTES,
    *plugins.ROUTES,
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
    plugin_report: plugins.PluginReport | None = None,
    image_probe: ImageProbe = sniff_image_format,
) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=request_guards(config))
    app[CONFIG] = config
    app[FOLDERS] = config.folders()
    app[REGISTRY] = registry
    store = PromptStore(config.database_path, history_max_items=config.history_max_items)
    app[STORE] = store
    app[HISTORY] = History(max_items=config.history_max_items, store=store)
    app[MACHINE_PROBE] = machine_probe
    app[IMAGE_PROBE] = image_probe
    app[EXECUTOR_FACTORY] = executor_factory
    app[plugins.PLUGINS] = plugin_report or plugins.PluginReport()
    add_api_routes(app.router, API_ROUTES)
    add_web_routes(app, web_root=config.web_root)
    app.cleanup_ctx.append(background_work)
    app.on_shutdown.append(close_websockets)
    return app


def request_guards(config: Config) -> list:
    """Error shaping, the Host/Origin guard, and the token check (set whenever a token is configured).

    Raises ValueError for a server listening beyond loopback without a token: anyone who can reach the
    port could run prompts and read every output."""
    guards = [json_errors, guard_middleware(listen=config.listen, cors_origin=config.cors_origin)]
    if config.auth_token:
        guards.append(token_middleware(config.auth_token))
    elif needs_token(config.listen):
        raise ValueError(f"listening on {config.listen} needs an access token (--auth-token)")
    return guards


def add_api_routes(router: web.UrlDispatcher, routes: Iterable[web.RouteDef]) -> None:
    """Each route twice: under /api and bare (ComfyUI's frontend uses /api, older clients do not)."""
    for route in routes:
        web.RouteDef(route.method, "/api" + route.path, route.handler, route.kwargs).register(router)
        route.register(router)


async def background_work(app: web.Application) -> AsyncIterator[None]:
    """Make the folders, reopen the store, start the hub and the worker thread; stop both at cleanup."""
    app[FOLDERS].create()
    store = app[STORE]
    recovered = await asyncio.to_thread(store.open)
    hub = WebSocketHub(asyncio.get_running_loop())
    queue = PromptQueue(on_change=hub.post_queue_status, store=store)
    await asyncio.to_thread(resume, recovered, queue=queue, history=app[HISTORY], registry=app[REGISTRY])
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
        # Not closed: the abandoned prompt may still record its outcome; the process exits next anyway.
        return
    await asyncio.to_thread(store.close)


async def close_websockets(app: web.Application) -> None:
    if HUB in app:
        await app[HUB].close_all()
