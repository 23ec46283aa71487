"""Helpers shared by test files: importable as ``support`` since tests/conftest.py puts tests/ on sys.path."""
