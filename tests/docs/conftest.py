"""The docs tests reuse the command-line tests' ``serving`` helper (a real ``evfabric serve``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).parents[1] / "cli" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_cli_conftest", _path)
assert _spec is not None and _spec.loader is not None
_cli = importlib.util.module_from_spec(_spec)
sys.modules["_cli_conftest"] = _cli
_spec.loader.exec_module(_cli)

serving = _cli.serving
SRC = _cli.SRC
