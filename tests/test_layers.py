"""The layer table of docs/architecture.md, checked: no module imports a layer below its own.

Every ``import evfabric.X`` / ``from evfabric.X import ...`` in ``src/evfabric`` (lazy imports
inside functions included) must name the module's own layer or one listed before it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "evfabric"

#: The layers, lowest first (docs/architecture.md); services and coordination keep this order too.
LAYERS = ["core", "wire", "local", "bus", "fabric", "broker", "testing", "access", "monitor", "triggers", "web",
          "coord", "sim", "benchmarking", "htc", "cli"]
PACKAGE_ROOT = {"__init__", "__main__"}  # the package's entry points may use any layer


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_layers(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "evfabric" and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return found


def test_every_package_is_in_the_layer_table() -> None:
    layers = {_layer(p) for p in ROOT.rglob("*.py")} - PACKAGE_ROOT
    assert layers <= set(LAYERS), f"packages missing from the layer table: {sorted(layers - set(LAYERS))}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _layer(path)
        if own in PACKAGE_ROOT:
            continue
        for target, line in _imported_layers(path):
            if target in LAYERS and LAYERS.index(target) > LAYERS.index(own):
                upward.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports evfabric.{target}")
    assert not upward, "imports that call a layer up:\n" + "\n".join(upward)
