"""``python -m server``: the same command as ``latentloom``."""

from server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
