"""The queue and history survive restarts, including ``kill -9`` of a real server in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

from server_helpers import slow_prompt, sum_prompt
from support.server_fakes import FakePack

from latentloom.api import NodeRegistry
from latentloom.engine.prompt import validate_prompt
from server.history import INTERRUPTED_BY_RESTART, History
from server.queue import PromptQueue, QueueItem
from server.recovery import resume
from server.store import PromptStore

REPO_ROOT = Path(__file__).resolve().parents[2]


def _registry(tmp_path: Path) -> NodeRegistry:
    registry = NodeRegistry()
    pack = FakePack(tmp_path / "output")
    for node_class in FakePack.NODE_TYPES:
        registry.register(node_class(pack), source="fake_pack")
    return registry


def _item(registry: NodeRegistry, number: int, prompt: dict[str, Any], prompt_id: str) -> QueueItem:
    graph = validate_prompt(prompt, registry)
    return QueueItem(
        number=number,
        prompt_id=prompt_id,
        prompt=prompt,
        extra_data={"client_id": "alice"},
        outputs_to_execute=list(graph.outputs),
        graph=graph,
        client_id="alice",
    )


def _reopen(path: Path, registry: NodeRegistry, *, max_items: int = 100) -> tuple[PromptQueue, History]:
    store = PromptStore(path, history_max_items=max_items)
    recovered = store.open()
    queue = PromptQueue(store=store)
    history = History(max_items=max_items, store=store)
    resume(recovered, queue=queue, history=history, registry=registry)
    store.flush()
    return queue, history


def test_the_database_is_in_wal_mode_under_the_base_directory(tmp_path):
    store = PromptStore(tmp_path / "user" / "latentloom.db", history_max_items=10)
    store.open()
    store.close()
    with sqlite3.connect(tmp_path / "user" / "latentloom.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_pending_prompts_come_back_in_order_and_the_running_one_is_recorded_interrupted(tmp_path):
    registry = _registry(tmp_path)
    path = tmp_path / "store.db"
    store = PromptStore(path, history_max_items=100)
    store.open()
    queue = PromptQueue(store=store)
    for number, prompt_id in ((5, "late"), (1, "first"), (3, "middle")):
        queue.put(_item(registry, number, sum_prompt(number, 1), prompt_id)).result()
    assert queue.take().prompt_id == "first"
    queue.delete(["late"])
    store.flush()
    # No close: the process "died" here. A second store opens the same file.
    queue2, history2 = _reopen(path, registry)

    assert [item.prompt_id for item in queue2.pending()] == ["middle"]
    assert list(queue2.pending()[0].graph.outputs) == ["4"]
    entry = history2.get("first")
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    [[event, data]] = entry["status"]["messages"]
    assert event == "execution_interrupted" and data["exception_message"] == INTERRUPTED_BY_RESTART
    assert entry["prompt"][1] == "first" and entry["prompt"][2] == sum_prompt(1, 1)
    # New prompts are numbered after the recovered ones, so they do not jump ahead of them.
    assert queue2.next_number(front=False) > 3
    # The interrupted prompt left the queue table: a third start does not record it again.
    queue3, history3 = _reopen(path, registry)
    assert [item.prompt_id for item in queue3.pending()] == ["middle"]
    assert history3.get("first") == entry


def test_a_pending_prompt_that_no_longer_validates_goes_to_history_as_an_error(tmp_path):
    registry = _registry(tmp_path)
    path = tmp_path / "store.db"
    store = PromptStore(path, history_max_items=100)
    store.open()
    PromptQueue(store=store).put(_item(registry, 1, sum_prompt(), "gone")).result()
    queue, history = _reopen(path, NodeRegistry())
    assert queue.pending() == []
    [[event, data]] = history.get("gone")["status"]["messages"]
    assert event == "execution_error" and data["reason"] == "invalid_after_restart"
    assert "TestNumber" in json.dumps(data)


def test_history_keeps_outputs_and_only_the_newest_entries_past_the_retention_limit(tmp_path):
    path = tmp_path / "store.db"
    store = PromptStore(path, history_max_items=3)
    store.open()
    history = History(max_items=3, store=store)
    for index in range(5):
        history.record(f"p{index}", {"outputs": {"4": {"images": [{"filename": f"f{index}.png"}]}}})
    history.delete(["p3"])
    store.close()

    _, reopened = _reopen(path, NodeRegistry(), max_items=3)
    assert list(reopened.latest()) == ["p2", "p4"]
    assert reopened.get("p4")["outputs"]["4"]["images"][0]["filename"] == "f4.png"


# -- a real server process, killed with SIGKILL -----------------------------------------------------

_LAUNCHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path[:0] = [{repo!r}, {tests!r}]
    from aiohttp import web
    from support.server_fakes import FakePack
    from latentloom.api import NodeRegistry
    from latentloom.engine.cache import OutputCache
    from latentloom.engine.executor import Executor
    from server.app import create_app
    from server.config import Config

    config = Config(base_dir=Path({base!r}), web_root=Path({base!r}) / "web", port={port})
    registry = NodeRegistry()
    pack = FakePack(config.folders().output)
    for node_class in FakePack.NODE_TYPES:
        registry.register(node_class(pack), source="fake_pack")
    app = create_app(
        config,
        registry=registry,
        executor_factory=lambda: Executor(registry, cache=OutputCache(ram_budget_bytes=0, enabled=False)),
        machine_probe=lambda: None,
    )
    web.run_app(app, host="127.0.0.1", port={port}, print=None, access_log=None)
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    def __init__(self, base: Path) -> None:
        self.port = _free_port()
        script = base / f"launch_{self.port}.py"
        script.write_text(
            _LAUNCHER.format(repo=str(REPO_ROOT), tests=str(REPO_ROOT / "tests"), base=str(base), port=self.port)
        )
        self.process = subprocess.Popen([sys.executable, str(script)], cwd=REPO_ROOT, stderr=subprocess.DEVNULL)
        self.wait_until(lambda: self.get("/api/prompt") is not None, what="the server to start")

    def request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        try:
            return self.request(path)
        except OSError:
            return None

    def wait_until(self, condition, *, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the server exited while waiting for {what}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return (self.get(f"/api/history/{prompt_id}") or {}).get(prompt_id)

    def stop(self, sig: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        self.process.wait(timeout=10)


def test_a_server_killed_mid_run_resumes_its_queue_and_keeps_its_history(tmp_path):
    first = ServerProcess(tmp_path)
    try:
        done = first.request("/api/prompt", {"prompt": sum_prompt(2, 3, prefix="before")})["prompt_id"]
        first.wait_until(lambda: first.history(done) is not None, what="the first prompt to finish")
        slow = first.request("/api/prompt", {"prompt": slow_prompt(steps=400, step_seconds=0.05)})["prompt_id"]
        waiting = [
            first.request("/api/prompt", {"prompt": sum_prompt(value, 1, prefix=f"after{value}")})["prompt_id"]
            for value in (10, 20)
        ]
        first.wait_until(
            lambda: [row[1] for row in first.get("/api/queue")["queue_running"]] == [slow],
            what="the slow prompt to run",
        )
    finally:
        first.stop(signal.SIGKILL)

    second = ServerProcess(tmp_path)
    try:
        second.wait_until(lambda: all(second.history(pid) for pid in waiting), what="the resumed prompts")
        assert second.history(done)["outputs"]["4"]["images"][0]["filename"] == "before_00000.txt"
        interrupted = second.history(slow)["status"]
        assert interrupted["status_str"] == "error"
        assert interrupted["messages"][0][0] == "execution_interrupted"
        assert interrupted["messages"][0][1]["exception_message"] == INTERRUPTED_BY_RESTART
        for value, prompt_id in zip((10, 20), waiting, strict=True):
            entry = second.history(prompt_id)
            assert entry["status"]["status_str"] == "success"
            [image] = entry["outputs"]["4"]["images"]
            assert (tmp_path / "output" / image["filename"]).read_text() == str(value + 1)
        queue = second.get("/api/queue")
        assert queue == {"queue_running": [], "queue_pending": []}
    finally:
        second.stop(signal.SIGTERM)
