"""Typed application keys: how route handlers reach the objects create_app put on the app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from latentloom.api import NodeRegistry
from latentloom.engine.executor import Executor
from server.config import Config, Folders
from server.files import ImageProbe
from server.history import History
from server.hub import WebSocketHub
from server.queue import PromptQueue
from server.store import PromptStore
from server.system_stats import MachineProbe
from server.worker import PromptWorker

# Called once per app start, in the background context: the worker's executor (with its cache).
ExecutorFactory = Callable[[], Executor]

CONFIG = web.AppKey("config", Config)
FOLDERS = web.AppKey("folders", Folders)
REGISTRY = web.AppKey("registry", NodeRegistry)
HISTORY = web.AppKey("history", History)
QUEUE = web.AppKey("queue", PromptQueue)
STORE = web.AppKey("store", PromptStore)
# How uploads are checked to be images (the composition root passes Pillow's check).
IMAGE_PROBE = web.AppKey("image_probe", ImageProbe)
MACHINE_PROBE = web.AppKey("machine_probe", MachineProbe)
EXECUTOR_FACTORY = web.AppKey("executor_factory", ExecutorFactory)
WEB_ROOT = web.AppKey("web_root", Path)
# Set by the background context while the app runs (they need the running loop).
HUB = web.AppKey("hub", WebSocketHub)
WORKER = web.AppKey("worker", PromptWorker)
