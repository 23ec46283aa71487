"""Content keys for node results: what a node computes, never where it sits in the graph.

A node's key digests its canonical type, its fingerprint, its literal inputs and, for each linked input
in name order, the input name, the output index and the key of the node feeding it. Equal keys mean equal
results, so an unchanged node in a resubmitted or a different graph is served from the cache. Keys are
16-byte digests: hashing and comparing them costs the same however deep the graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latentloom.api.node import ALWAYS_RUN, NodeType
from latentloom.engine.graph import GraphNode

_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class NodeKey:
    """A node's cache key. ``volatile`` results must not be reused: the node (or an ancestor) always runs."""

    digest: bytes
    volatile: bool


def node_key(node: GraphNode, node_type: NodeType, *, ancestors: Mapping[str, NodeKey], run_id: str) -> NodeKey:
    """The key of ``node`` given the keys of the nodes feeding it. Calls the node type's fingerprint."""
    fingerprint = node_type.fingerprint(**node.literals)
    fingerprint_text = None if fingerprint is ALWAYS_RUN else canonical_text(fingerprint)
    literals_text = canonical_text(node.literals)
    volatile = fingerprint_text is None or literals_text is None
    parts = [repr(node.class_type), str(fingerprint_text), str(literals_text)]
    if any(h.kind == "UNIQUE_ID" for h in node_type.schema.hidden):
        parts.append(repr(node.id))  # the node receives its own id, so its result may depend on it
    for name, link in node.links.items():
        source = ancestors[link.source]
        volatile = volatile or source.volatile
        parts.append(f"{name!r}:{link.output_index}:{source.digest.hex()}")
    if volatile:
        # Unique to this run and node: nothing stored can match, and downstream keys change too.
        parts.append(f"volatile:{run_id!r}:{node.id!r}")
    text = "|".join(parts).encode("utf-8", "surrogatepass")
    return NodeKey(hashlib.blake2b(text, digest_size=16).digest(), volatile)


def canonical_text(value: Any, *, depth: int = 0) -> str | None:
    """A deterministic text for plain data (dict order does not matter); None when there is none.

    Objects without their own ``__repr__`` (whose repr shows a memory address) have no deterministic
    text, and neither do structures nested deeper than 32 levels; their node is treated as always-run.
    """
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, list | tuple):
        return _joined("[", (canonical_text(v, depth=depth + 1) for v in value), "]", ordered=True)
    if isinstance(value, Mapping):
        items = (_pair(k, v, depth=depth + 1) for k, v in value.items())
        return _joined("{", items, "}", ordered=False)
    if isinstance(value, set | frozenset):
        return _joined("set{", (canonical_text(v, depth=depth + 1) for v in value), "}", ordered=False)
    if type(value).__repr__ is object.__repr__:
        return None
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _pair(key: Any, value: Any, *, depth: int) -> str | None:
    key_text = canonical_text(key, depth=depth)
    value_text = canonical_text(value, depth=depth)
    return None if key_text is None or value_text is None else f"{key_text}:{value_text}"


def _joined(opening: str, parts: Any, closing: str, *, ordered: bool) -> str | None:
    texts = list(parts)
    if any(t is None for t in texts):
        return None
    if not ordered:
        texts.sort()
    return opening + ",".join(texts) + closing
