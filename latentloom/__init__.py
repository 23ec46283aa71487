"""LatentLoom: a node-graph workflow editor and executor for Stable Diffusion."""

__version__ = "0.1.0"
