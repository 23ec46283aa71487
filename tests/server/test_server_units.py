"""The server's parts on their own: queue order, history slicing, pack loading, paths, config, origin."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import pytest
from support.shared import shared_dir

from latentloom.api import IntInput, NodeSchema, NodeType, Output, Services, hookimpl
from server.config import Config
from server.files import UnsafePath, resolve_inside, sanitize_filename
from server.history import History
from server.origin import is_cross_origin
from server.packs import load_packs
from server.queue import PromptQueue, QueueClosed, QueueItem


def _item(prompt_id: str, number: float) -> QueueItem:
    return QueueItem(number, prompt_id, {}, {}, [], graph=None)


def test_the_queue_runs_the_lowest_number_first_and_keeps_arrival_order_for_ties():
    changes: list[int] = []
    queue = PromptQueue(on_change=changes.append)
    numbers = [queue.next_number(front=False) for _ in range(3)]
    assert numbers == [0, 1, 2]
    assert queue.next_number(front=True) == -3
    queue.put(_item("b", 5))
    queue.put(_item("c", 5))
    queue.put(_item("a", -1))
    assert [i.prompt_id for i in queue.pending()] == ["a", "b", "c"]
    assert queue.take(timeout=0).prompt_id == "a"
    assert [i.prompt_id for i in queue.running()] == ["a"]
    assert queue.remaining() == 3
    assert queue.delete(["c", "zzz", "a"]) == ["c"]  # the running prompt is not deleted
    queue.finish("a")
    assert queue.clear() == 1
    assert changes == [1, 2, 3, 3, 2, 1, 0]


def test_taking_from_an_empty_queue_waits_and_close_wakes_the_taker():
    queue = PromptQueue()
    assert queue.take(timeout=0.01) is None
    outcome: list[object] = []

    def take() -> None:
        try:
            queue.take()
        except QueueClosed as closed:
            outcome.append(closed)

    taker = threading.Thread(target=take)
    taker.start()
    queue.close()
    taker.join(2)
    assert not taker.is_alive() and isinstance(outcome[0], QueueClosed)


def test_history_keeps_the_newest_entries_and_slices_like_comfyui():
    history = History(max_items=3)
    for index in range(5):
        history.record(f"p{index}", {"n": index})
    assert list(history.latest()) == ["p2", "p3", "p4"]
    assert list(history.latest(max_items=2)) == ["p3", "p4"]
    assert list(history.latest(max_items=1, offset=0)) == ["p2"]
    assert list(history.latest(offset=1)) == ["p3", "p4"]
    assert history.get("p0") is None and history.get("p4") == {"n": 4}
    assert history.delete(["p3", "nope"]) == ["p3"]
    history.clear()
    assert len(history) == 0


class _Constant(NodeType):
    def __init__(self, name: str) -> None:
        self.schema = NodeSchema(type=name, required=(IntInput("value"),), outputs=(Output("INT"),))

    def execute(self, ctx, value):
        return (value,)


class _Pack:
    def __init__(self, name: str, *node_names: str, fail: bool = False) -> None:
        self.__name__ = name
        self._node_names = node_names
        self._fail = fail

    @hookimpl
    def register_nodes(self, registry, services):
        for node_name in self._node_names:
            registry.register(_Constant(node_name), source=self.__name__)
        if self._fail:
            raise RuntimeError("this pack is broken")


def test_a_broken_or_conflicting_pack_is_left_out_whole_and_the_others_load():
    packs = [
        _Pack("good", "A", "B"),
        _Pack("broken", "C", fail=True),
        _Pack("clash", "D", "A"),
        _Pack("late", "E"),
    ]
    loaded = load_packs(packs, services=Services())
    assert list(loaded.registry) == ["A", "B", "E"]
    assert loaded.loaded == ("good", "late")
    failures = {f.pack: f.message for f in loaded.failures}
    assert set(failures) == {"broken", "clash"}
    assert "this pack is broken" in failures["broken"]
    assert "'A'" in failures["clash"] and "good" in failures["clash"]
    assert loaded.registry.source_of("A") == "good"


def test_config_puts_the_folders_under_the_base_dir_and_creates_them_only_when_asked(tmp_path: Path):
    config = Config(base_dir=tmp_path / "base")
    folders = config.folders()
    assert folders.input == (tmp_path / "base" / "input").resolve()
    assert folders.by_type("temp") == folders.temp and folders.by_type("models") is None
    assert not (tmp_path / "base").exists()
    folders.create()
    assert all(p.is_dir() for p in (folders.input, folders.output, folders.temp))
    moved = Config(base_dir=tmp_path, output_dir=tmp_path / "elsewhere").folders()
    assert moved.output == (tmp_path / "elsewhere").resolve()
    assert Config(listen="::1", port=9000).url == "http://[::1]:9000/"
    assert Config().base_dir == Path(__file__).resolve().parents[2]  # the checkout holding pyproject.toml


def test_the_default_cache_budget_is_half_the_ram_and_room_for_a_full_size_sd15_checkpoint():
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    budget = Config().cache_ram_budget_bytes
    assert budget == max(4 * 1024**3, physical // 2)
    shapes = json.loads((shared_dir() / "sd15_checkpoint_keys.json").read_text()).values()
    full_size_sd15_fp32 = 4 * sum(math.prod(shape) for shape in shapes)
    assert budget > full_size_sd15_fp32
    assert Config(cache_ram_gb=0.5).cache_ram_budget_bytes == 512 * 1024**2


def test_resolve_inside_accepts_nested_names_and_refuses_escapes(tmp_path: Path):
    root = tmp_path / "output"
    root.mkdir()
    assert resolve_inside(root, subfolder="a/b", filename="c.png") == root.resolve() / "a" / "b" / "c.png"
    for subfolder, filename in [("", "a/b.png"), ("a/../..", "x"), ("", ""), ("C:", "x"), ("", "C:x")]:
        with pytest.raises(UnsafePath):
            resolve_inside(root, subfolder=subfolder, filename=filename)


def test_sanitize_filename_keeps_a_plain_portable_name():
    assert sanitize_filename("photo.png") == "photo.png"
    assert sanitize_filename("dir/sub/photo.png") == "photo.png"
    assert sanitize_filename('a:b*c?"d".png') == "a_b_c__d_.png"
    assert sanitize_filename(".hidden.png") == "hidden.png"
    assert len(sanitize_filename("x" * 500 + ".png")) == 200
    for unusable in ("", "..", "/", "  "):
        with pytest.raises(UnsafePath):
            sanitize_filename(unusable)


@pytest.mark.parametrize(
    ("origin", "host", "refused"),
    [
        ("http://evil.example", "127.0.0.1:8188", True),
        ("http://127.0.0.1:9999", "127.0.0.1:8188", True),
        ("null", "localhost:8188", True),
        ("http://127.0.0.1:8188", "127.0.0.1:8188", False),
        ("http://LOCALHOST:8188", "localhost:8188", False),
        ("http://[::1]:8188", "[::1]:8188", False),
        ("http://evil.example", "192.168.1.20:8188", True),
        ("http://192.168.1.20:3000", "192.168.1.20:8188", True),  # another port of the same LAN host
        ("http://192.168.1.20:8188", "192.168.1.20:8188", False),
        ("http://studio.example", "studio.example", False),  # default ports on both sides
    ],
)
def test_cross_origin_requests_are_told_apart(origin, host, refused):
    assert is_cross_origin(origin=origin, host=host, scheme="http") is refused
