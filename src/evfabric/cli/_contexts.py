"""Saved contexts (like ``nats context``): a name for a broker URL, a token and TLS files.

They live in one JSON file, ``$EVFABRIC_CONFIG_DIR`` or ``$XDG_CONFIG_HOME/evfabric`` or
``~/.config/evfabric``, ``contexts.json``, written with mode 0600 (it holds tokens):
``{"selected": "lab", "contexts": {"lab": {"url": ..., "token": ..., ...}}}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Context", "config_dir", "load_context", "read_all", "write_all"]


@dataclass(frozen=True)
class Context:
    """One saved broker: its URL, and optionally a token and TLS files."""

    name: str
    url: str
    token: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Everything but the name (the file keys contexts by name)."""
        d = asdict(self)
        d.pop("name")
        return d


def config_dir() -> Path:
    """Where ``contexts.json`` lives (see module doc)."""
    if os.environ.get("EVFABRIC_CONFIG_DIR"):
        return Path(os.environ["EVFABRIC_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "evfabric"


def _path() -> Path:
    return config_dir() / "contexts.json"


def read_all() -> tuple[str | None, dict[str, Context]]:
    """(selected name or None, contexts by name); empty when there is no file."""
    p = _path()
    if not p.exists():
        return None, {}
    data = json.loads(p.read_text() or "{}")
    found = {n: Context(name=n, **v) for n, v in (data.get("contexts") or {}).items()}
    return data.get("selected"), found


def write_all(selected: str | None, contexts: dict[str, Context]) -> Path:
    """Replace the file (mode 0600, directory 0700); returns its path."""
    p = _path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"selected": selected, "contexts": {n: c.as_dict() for n, c in sorted(contexts.items())}}, f,
                  indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    return p


def load_context(name: str | None) -> Context | None:
    """Context ``name``, or the selected one when ``name`` is None (None if none is selected).

    Raises LookupError when ``name`` (or the selected name) is not saved.
    """
    selected, contexts = read_all()
    wanted = name or selected
    if not wanted:
        return None
    if wanted not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise LookupError(f"no context named {wanted!r} (saved: {known}); see `evfabric context ls`")
    return contexts[wanted]
