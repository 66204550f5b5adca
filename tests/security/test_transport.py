"""Issue #10 point 9: TLS for clients (verified certificates, fail fast on a bad one), private
files (0600 configs and secrets, 0700 data directory), credentials redacted in all output."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import stat
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from typer.testing import CliRunner

from evfabric.access import AccessStore, nats_options
from evfabric.access.tls import self_signed
from evfabric.broker.config import free_port
from evfabric.cli import app as cli_app
from evfabric.testing import running_broker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_tls_clients_verify_and_plaintext_is_refused(tmp_path: Path) -> None:
    files = self_signed(tmp_path / "tls")
    with running_broker(tmp_path / "b") as srv:
        srv.settings.tls_cert, srv.settings.tls_key = files.cert, files.key
        srv.restart()
        url = f"tls://127.0.0.1:{srv.settings.port}"

        async def main() -> None:
            # a client that does not trust the certificate fails at once (no retry loop)
            t0 = time.monotonic()
            with pytest.raises(Exception):
                await nats.connect(url, tls=ssl.create_default_context(), connect_timeout=2,
                                   allow_reconnect=False, max_reconnect_attempts=0)
            assert time.monotonic() - t0 < 3
            nc = await nats.connect(url, tls=files.client_context(), connect_timeout=2)  # positive control
            assert nc.is_connected
            await nc.close()

        asyncio.run(main())
        # a plaintext CONNECT (a token in clear) is not accepted
        with socket.create_connection(("127.0.0.1", srv.settings.port), timeout=3) as s:
            info = s.recv(4096)
            assert b'"tls_required":true' in info
            s.sendall(b'CONNECT {"user":"x","pass":"y"}\r\nPING\r\n')
            try:
                answer = s.recv(4096)
            except (ConnectionResetError, TimeoutError):
                answer = b""
            assert b"PONG" not in answer


def test_serve_files_are_private(tmp_path: Path) -> None:
    store = AccessStore.in_dir(tmp_path / "d")
    store.create_identity("alice")
    res = CliRunner().invoke(cli_app, ["serve", "-d", str(tmp_path / "d"), "--port", "0", "--http-port", "0",
                                       "--leafnode-port", "0", "--config-only", "--no-web"])
    assert res.exit_code == 0, res.output
    d = tmp_path / "d"
    assert _mode(d / "nats.conf") == 0o600 and _mode(d / "access.db") == 0o600
    assert _mode(d / "leaf.secret") == 0o600
    secret = (d / "leaf.secret").read_text().strip()
    assert secret in (d / "nats.conf").read_text() and secret not in res.output
    with running_broker(tmp_path / "run") as srv:
        assert _mode(srv.data_dir) == 0o700 and _mode(srv.config_path) == 0o600


def test_leaf_credentials_are_not_printed(tmp_path: Path) -> None:
    leaf = "nats-leaf://evfabric-leaf:TOPSECRETleafpw@127.0.0.1:7422"
    res = CliRunner().invoke(cli_app, ["serve", "-d", str(tmp_path), "--port", "0", "--http-port", "0",
                                       "--leaf", leaf, "--config-only", "--no-web"])
    assert res.exit_code == 0, res.output
    assert "TOPSECRETleafpw" not in res.output and "TOPSECRETleafpw" in (tmp_path / "nats.conf").read_text()


def test_status_never_echoes_the_token(secured: Any) -> None:
    token = secured.tokens["alice"]
    opts = nats_options(token)
    url = f"nats://{opts['user']}:{token}@127.0.0.1:{secured.server.settings.port}"
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["status", "--url", url, "--json"])
    assert token not in ok.output
    assert json.loads(ok.output.strip().splitlines()[-1])["client_url"].endswith(f"@127.0.0.1:{secured.server.settings.port}")
    down = f"nats://{opts['user']}:{token}@127.0.0.1:{free_port()}"
    for args in (["status", "--url", down], ["status", "--url", down, "--json"]):
        res = runner.invoke(cli_app, args)
        assert res.exit_code == 1 and token not in res.output
