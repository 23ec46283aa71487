"""What the executor re-runs and what it serves from the cache (counted executions of fake nodes)."""

from __future__ import annotations

import threading

from latentloom.api import Input, NodeSchema, Output
from latentloom.engine import Executor, OutputCache, validate_prompt

from .builder import PromptBuilder, txt2img
from .fakes import FakeNode, registry_of
from .harness import Harness


def test_first_run_executes_every_node_once(harness, p):
    txt2img(p)
    assert harness.counts_during(p.build()) == {"Loader": 1, "Encode": 1, "Sampler": 1, "Save": 1}


def test_identical_resubmission_executes_nothing(harness, p):
    txt2img(p)
    harness.run(p.build())
    outcome = harness.run(p.build())
    assert outcome.status == "success"
    assert outcome.executed == []
    assert outcome.timings == {}
    assert outcome.cached == ["1", "2", "3", "4"]
    assert harness.nodes.counts() == {"Loader": 1, "Encode": 1, "Sampler": 1, "Save": 1}


def test_seed_change_reruns_only_the_sampler_and_downstream(harness, p):
    refs = txt2img(p, seed=1)
    harness.run(p.build())
    p.set(refs["sampler"], seed=2)
    assert harness.counts_during(p.build()) == {"Sampler": 1, "Save": 1}


def test_prompt_text_change_reruns_encoder_and_downstream_but_not_the_loader(harness, p):
    refs = txt2img(p, text="a cat")
    harness.run(p.build())
    p.set(refs["encode"], text="a dog")
    outcome = harness.run(p.build())
    assert outcome.executed == ["2", "3", "4"]
    assert outcome.cached == ["1"]
    assert harness.nodes.encoder.calls[-1]["text"] == "a dog"


def test_changing_back_serves_the_earlier_results(harness, p):
    refs = txt2img(p, seed=1)
    harness.run(p.build())
    p.set(refs["sampler"], seed=2)
    harness.run(p.build())
    p.set(refs["sampler"], seed=1)
    assert harness.counts_during(p.build()) == {}


def _relabelled(prompt: dict) -> dict:
    """The same prompt with every node id (and every link) renamed."""
    renamed = {f"n{node_id}": node for node_id, node in prompt.items()}
    for node in renamed.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                node["inputs"][name] = [f"n{value[0]}", value[1]]
    return renamed


def test_keys_ignore_node_ids_so_renumbered_graphs_hit(harness, p):
    value = p.add("Const", value=4)
    p.add("Show", value=p.add("Add", a=value.out(), b=value.out()).out())
    harness.run(p.build())
    assert harness.counts_during(_relabelled(p.build())) == {}


def test_node_that_receives_its_own_id_reruns_under_a_new_id(harness, p):
    """Save declares a UNIQUE_ID hidden input, so its result may depend on its id (as in ComfyUI)."""
    txt2img(p)
    harness.run(p.build())
    assert harness.counts_during(_relabelled(p.build())) == {"Save": 1}


def test_two_identical_nodes_in_one_prompt_run_once(harness, p):
    first = p.add("Loader", ckpt_name="a.ckpt")
    second = p.add("Loader", ckpt_name="a.ckpt")
    p.add("Show", value=first.out(0))
    p.add("Show", value=second.out(0))
    outcome = harness.run(p.build())
    assert harness.nodes.loader.count == 1
    assert outcome.executed == ["1", "3"]
    assert sorted(outcome.cached) == ["2", "4"]
    assert outcome.ui_outputs["3"] == outcome.ui_outputs["4"] == {"text": ["'model<a.ckpt>'"]}


def test_always_run_node_and_its_downstream_rerun_every_time(harness, p):
    rnd = p.add("Random", salt=10)
    five = p.add("Const", value=5)
    total = p.add("Add", a=rnd.out(), b=five.out())
    p.add("Show", value=total.out())
    p.add("Show", value=five.out())
    first = harness.run(p.build())
    counts = harness.counts_during(p.build())
    assert counts == {"Random": 1, "Add": 1, "Show": 1}
    # Random returns salt + how many times it ran: 10 + 1 + 5, then 10 + 2 + 5.
    assert first.ui_outputs["4"] == {"text": ["16"]}
    shown = {e["node"]: e["output"] for e in harness.of_type("executed")}
    assert shown == {"4": {"text": ["17"]}, "5": {"text": ["5"]}}


def test_always_run_results_are_not_stored(harness, p):
    p.add("Show", value=p.add("Random", salt=0).out())
    harness.run(p.build())
    assert len(harness.cache) == 0


def test_cache_disabled_reruns_everything(p):
    harness = Harness(cache=OutputCache(enabled=False))
    txt2img(p)
    harness.run(p.build())
    assert harness.counts_during(p.build()) == {"Loader": 1, "Encode": 1, "Sampler": 1, "Save": 1}
    assert harness.cache.stats()["entries"] == 0


def test_force_reruns_every_node_and_refreshes_the_cache(harness, p):
    txt2img(p)
    harness.run(p.build())
    forced = harness.run(p.build(), force=True)
    assert forced.executed == ["1", "2", "3", "4"]
    assert forced.cached == []
    assert harness.nodes.counts() == {"Loader": 2, "Encode": 2, "Sampler": 2, "Save": 2}
    assert harness.run(p.build()).executed == []


def test_force_still_runs_identical_nodes_once(harness, p):
    first = p.add("Loader", ckpt_name="a.ckpt")
    second = p.add("Loader", ckpt_name="a.ckpt")
    p.add("Show", value=first.out(0))
    p.add("Show", value=second.out(0))
    harness.run(p.build())
    harness.run(p.build(), force=True)
    assert harness.nodes.loader.count == 2


def test_switching_between_two_graphs_keeps_both_cached(harness):
    cat, dog = PromptBuilder(), PromptBuilder()
    txt2img(cat, text="a cat", ckpt="a.ckpt")
    txt2img(dog, text="a dog", ckpt="b.ckpt")
    harness.run(cat.build())
    harness.run(dog.build())
    assert harness.counts_during(cat.build()) == {}
    assert harness.counts_during(dog.build()) == {}
    assert harness.nodes.loader.count == 2


def test_budget_for_one_graph_evicts_the_least_recently_used_graph(p):
    cat, dog = PromptBuilder(), PromptBuilder()
    txt2img(cat, text="a cat", ckpt="a.ckpt")
    txt2img(dog, text="a dog", ckpt="b.ckpt")
    measuring = Harness()
    measuring.run(cat.build())
    one_graph = measuring.cache.stats()["bytes"]

    harness = Harness(cache=OutputCache(ram_budget_bytes=one_graph))
    harness.run(cat.build())
    assert harness.cache.stats()["entries"] == 4
    harness.run(dog.build())
    stats = harness.cache.stats()
    assert stats["bytes"] <= one_graph
    assert stats["evictions"] >= 3
    assert harness.counts_during(dog.build()) == {}  # the newest graph stayed
    assert harness.counts_during(cat.build())["Loader"] == 1  # the older one was evicted


def test_cached_output_node_still_reports_its_ui(harness, p):
    txt2img(p)
    first = harness.run(p.build())
    second = harness.run(p.build())
    executed = harness.of_type("executed")
    assert executed == [
        {"node": "4", "display_node": "4", "output": first.ui_outputs["4"], "prompt_id": "p2"},
    ]
    assert second.ui_outputs == first.ui_outputs == {"4": {"images": [{"filename": "img_4.png", "type": "output"}]}}


def test_only_nodes_that_must_run_are_visited(harness, p):
    """A cached output needs nothing upstream; upstream cached nodes are not even read."""
    refs = txt2img(p)
    harness.run(p.build())
    harness.cache.clear()
    p.set(refs["save"], filename_prefix="other")
    harness.run(p.build())
    assert harness.nodes.counts() == {"Loader": 2, "Encode": 2, "Sampler": 2, "Save": 2}


def test_failed_node_keeps_results_of_the_nodes_before_it(harness, p):
    value = p.add("Const", value=3)
    fail = p.add("Fail", value=value.out(), mode="value")
    p.add("Show", value=fail.out())
    assert harness.run(p.build()).status == "error"
    p.set(fail, mode="pass")
    outcome = harness.run(p.build())
    assert outcome.status == "success"
    assert outcome.cached == ["1"]
    assert harness.nodes.const.count == 1


def test_very_long_chain_runs_and_is_then_fully_cached(harness):
    p = PromptBuilder()
    zero = p.add("Const", value=0)
    previous = p.add("Const", value=1)
    for _ in range(3_000):
        previous = p.add("Add", a=previous.out(), b=zero.out())
    p.add("Show", value=previous.out())
    first = harness.run(p.prompt)
    assert first.status == "success" and len(first.executed) == 3_003
    assert first.ui_outputs[str(len(p.prompt))] == {"text": ["1"]}
    second = harness.run(p.prompt)
    assert second.executed == [] and len(second.cached) == 3_003


class GrowingModel:
    """Like a model handle that keeps patched weights at its first run: bigger after a node used it."""

    def __init__(self) -> None:
        self.kept_bytes = 1000

    def __sizeof_cache__(self) -> int:
        return self.kept_bytes


def test_the_cache_measures_results_again_after_each_prompt():
    model = GrowingModel()
    load = FakeNode(NodeSchema(type="Load", outputs=(Output("MODEL"),)), lambda ctx: (model,))

    def use(ctx, model):
        model.kept_bytes = 50_000
        return (1,)

    schema = NodeSchema(type="Run", required=(Input("model", "MODEL"),), outputs=(Output("INT"),), output_node=True)
    run = FakeNode(schema, use)
    registry = registry_of(load, run)
    cache = OutputCache(ram_budget_bytes=None)
    prompt = {"1": {"class_type": "Load", "inputs": {}}, "2": {"class_type": "Run", "inputs": {"model": ["1", 0]}}}
    Executor(registry, cache=cache).run(
        validate_prompt(prompt, registry), prompt_id="p", emit=lambda event: None, interrupt=threading.Event()
    )
    assert 50_000 < cache.stats()["bytes"] < 51_000  # measured when stored (1000), then again after the run
