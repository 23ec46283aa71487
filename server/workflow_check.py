"""``latentloom check WORKFLOW``: can this file run here, and if not, why.

The report lists missing node types ("missing node types: X (N nodes), ..."), what loading and the
conversion to a prompt noticed, and the engine's validation problems; or one line
"ok: N nodes, all node types available".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latentloom.api import NodeRegistry
from latentloom.engine.errors import GraphValidationError
from latentloom.engine.prompt import validate_prompt
from latentloom.workflow import (
    Workflow,
    WorkflowFormatError,
    load_workflow,
    missing_node_types,
    missing_node_types_message,
    workflow_to_prompt,
)


@dataclass(frozen=True)
class CheckReport:
    lines: list[str]
    ok: bool  # the workflow would run here


def check_workflow_file(path: Path, registry: NodeRegistry) -> CheckReport:
    try:
        workflow = load_workflow(path, registry)
    except OSError as error:
        return CheckReport([f"error: cannot read {path}: {error.strerror or error}"], ok=False)
    except WorkflowFormatError as error:
        return CheckReport([f"error: {path}: {error}"], ok=False)
    return check_workflow(workflow, registry)


def check_workflow(workflow: Workflow, registry: NodeRegistry) -> CheckReport:
    """Loading notes are shown but do not fail the check (the loader already set those parts aside)."""
    counts = missing_node_types(workflow, registry)
    lines = [missing_node_types_message(counts)] if counts else []
    lines += [f"note: {problem}" for problem in workflow.problems]
    prompt, problems = workflow_to_prompt(workflow, registry)
    # Missing nodes are in the conversion problems too; the line above already names them.
    problems = [p for p in problems if p.node_type not in counts]
    lines += [f"problem: {problem}" for problem in problems]
    runs_missing = missing_node_types(workflow, registry, running_only=True)
    invalid: list[str] = []
    if not runs_missing and not problems:
        try:
            validate_prompt(prompt, registry)
        except GraphValidationError as error:
            invalid = [f"invalid: {problem.describe()}" for problem in error.problems]
    ok = not runs_missing and not problems and not invalid
    if not counts:
        lines.insert(0, f"ok: {len(workflow.nodes)} nodes, all node types available")
    return CheckReport(lines + invalid, ok=ok)
