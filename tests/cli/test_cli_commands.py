"""The latentloom command: nodes, run (in-process with a fake pack) and the installed entry point."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.cli import main
from server.headless import WorkflowFileError, parse_override

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def test_nodes_json_lists_name_category_inputs_and_outputs(cli_pack, capsys):
    assert main(["nodes", "--json"], extra_packs=[cli_pack]) == 0
    listing = {node["name"]: node for node in json.loads(capsys.readouterr().out)}
    assert {"CliNumber", "CliAdd", "CliSaveText", "CliFail"} <= set(listing)
    add = listing["CliAdd"]
    assert add["category"] == "cli" and add["source"] == "cli_pack"
    assert add["inputs"] == [
        {"name": "a", "type": "INT", "required": True},
        {"name": "b", "type": "INT", "required": True},
    ]
    assert add["outputs"] == [{"name": "sum", "type": "INT"}]
    assert listing["CliSaveText"]["outputs"] == []


def test_nodes_prints_one_line_per_node_type(cli_pack, capsys):
    assert main(["nodes"], extra_packs=[cli_pack]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "CliAdd  [cli]  (a: INT, b: INT) -> INT" in lines


def test_run_executes_the_workflow_and_prints_the_files_it_wrote(cli_pack, workflow_file, tmp_path, capsys):
    code = main(["run", str(workflow_file), "--base-dir", str(tmp_path)], extra_packs=[cli_pack])
    captured = capsys.readouterr()
    assert code == 0, captured
    written = tmp_path.resolve() / "output" / "texts" / "sum_5.txt"
    assert captured.out.splitlines() == [str(written)]
    assert written.read_text() == "5"
    # The progress bar (stderr) followed the adder's three progress events.
    assert "#3 CliAdd" in captured.err and "3/3" in captured.err
    assert "CliNumber" not in captured.err  # nodes that report no progress get no bar


def test_run_applies_set_overrides_as_json_or_text(cli_pack, workflow_file, tmp_path, capsys):
    argv = ["run", str(workflow_file), "--base-dir", str(tmp_path), "--no-progress"]
    argv += ["--set", "2.value=40", "--set", "4.filename_prefix=answer"]
    assert main(argv, extra_packs=[cli_pack]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [str(tmp_path.resolve() / "output" / "texts" / "answer_42.txt")]
    assert Path(out[0]).read_text() == "42"


def test_run_with_out_reports_files_in_that_folder(pack_writing_to, workflow_file, tmp_path, capsys):
    out_dir = tmp_path / "elsewhere"
    argv = ["run", str(workflow_file), "--base-dir", str(tmp_path), "--out", str(out_dir), "--no-progress"]
    assert main(argv, extra_packs=[pack_writing_to(out_dir)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == out_dir.resolve() / "texts" / "sum_5.txt" and printed.read_text() == "5"


def test_a_failing_node_exits_1_with_the_structured_execution_error(cli_pack, tmp_path, capsys):
    workflow = tmp_path / "fail.json"
    prompt = {
        "1": {"class_type": "CliNumber", "inputs": {"value": 7}},
        "2": {"class_type": "CliFail", "inputs": {"value": ["1", 0]}},
    }
    workflow.write_text(json.dumps(prompt))
    code = main(["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress"], extra_packs=[cli_pack])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "error"
    assert report["error"]["node_id"] == "2" and report["error"]["node_type"] == "CliFail"
    assert "7 is refused on purpose" in report["error"]["exception_message"]


def test_ctrl_c_during_run_interrupts_the_prompt_and_exits_130(cli_pack, tmp_path, capsys):
    workflow = tmp_path / "slow.json"
    prompt = {
        "1": {"class_type": "CliSlow", "inputs": {"steps": 3000, "ctrl_c_at_step": 5}},
        "2": {"class_type": "CliSaveText", "inputs": {"value": ["1", 0], "filename_prefix": "slow"}},
    }
    workflow.write_text(json.dumps(prompt))
    started = time.monotonic()
    code = main(["run", str(workflow), "--base-dir", str(tmp_path), "--no-progress"], extra_packs=[cli_pack])
    assert code == 130 and time.monotonic() - started < 10
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "interrupted" and report["error"]["node_id"] == "1"
    assert not (tmp_path / "output" / "texts").exists()


def test_an_invalid_graph_exits_2_with_comfyui_node_errors(cli_pack, workflow_file, tmp_path, capsys):
    argv = ["run", str(workflow_file), "--base-dir", str(tmp_path), "--set", "1.value=one"]
    assert main(argv, extra_packs=[cli_pack]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"]["type"] == "prompt_outputs_failed_validation"
    assert report["node_errors"]["1"]["errors"][0]["extra_info"]["input_name"] == "value"
    assert not (tmp_path / "output" / "texts").exists()


@pytest.mark.parametrize(
    ("content", "overrides", "expected"),
    [
        ("{broken", [], "not valid JSON"),
        ('{"nodes": [], "links": []}', [], "canvas workflow"),
        ("[1, 2]", [], "JSON object"),
        ('{"1": {"class_type": "CliNumber", "inputs": {"value": 1}}}', ["9.value=1"], "no node '9'"),
        ('{"1": {"class_type": "CliNumber", "inputs": {"value": 1}}}', ["1value=1"], "NODE.INPUT=VALUE"),
    ],
)
def test_unusable_workflow_files_and_overrides_exit_2_with_a_message(
    cli_pack, tmp_path, capsys, content, overrides, expected
):
    workflow = tmp_path / "workflow.json"
    workflow.write_text(content)
    argv = ["run", str(workflow), "--base-dir", str(tmp_path)] + [f"--set={o}" for o in overrides]
    assert main(argv, extra_packs=[cli_pack]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"]["type"] == "invalid_workflow" and expected in report["error"]["message"]


def test_set_values_are_json_when_they_parse_and_text_otherwise():
    assert parse_override("3.seed=42") == ("3", "seed", 42)
    assert parse_override("3.cfg=7.5") == ("3", "cfg", 7.5)
    assert parse_override("6.text=a cat, sitting") == ("6", "text", "a cat, sitting")
    assert parse_override('6.text="42"') == ("6", "text", "42")
    assert parse_override("6.flag=true") == ("6", "flag", True)
    assert parse_override("group.7.value=1") == ("group.7", "value", 1)
    assert parse_override("6.text=") == ("6", "text", "")
    with pytest.raises(WorkflowFileError):
        parse_override("6.text")


def test_the_installed_command_and_python_m_server_answer_help():
    for command in ([str(VENV_BIN / "latentloom"), "--help"], [sys.executable, "-m", "server", "--help"]):
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "serve" in result.stdout and "run" in result.stdout and "nodes" in result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_prints_its_url_answers_http_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    command = [str(VENV_BIN / "latentloom"), "serve", "--port", str(port), "--base-dir", str(tmp_path)]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first_line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/prompt", timeout=10) as response:
            assert json.load(response) == {"exec_info": {"queue_remaining": 0}}
        assert (tmp_path / "output").is_dir() and (tmp_path / "input").is_dir()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        finally:
            if server.poll() is None:
                os.kill(server.pid, signal.SIGKILL)
    assert server.returncode == 0


def test_an_unusable_extra_model_paths_file_exits_2_naming_it(cli_pack, workflow_file, tmp_path, capsys):
    broken = tmp_path / "extra_model_paths.yaml"
    broken.write_text("comfyui: [not, a, mapping]\n")
    argv = ["run", str(workflow_file), "--base-dir", str(tmp_path), "--extra-model-paths", str(broken)]
    assert main(argv, extra_packs=[cli_pack]) == 2
    assert str(broken) in capsys.readouterr().err
    assert not (tmp_path / "output").exists()
