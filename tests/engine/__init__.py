"""Tests of latentloom.engine: validation, schedule, cache, executor and events, with fake nodes."""
