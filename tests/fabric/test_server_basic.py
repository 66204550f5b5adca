"""BrokerServer: start, stop, restart, readiness, bad configs, missing binary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from evfabric.broker.server import BrokerServer
from evfabric.core.errors import BrokerUnavailable, ConfigError
from evfabric.testing import wait_until

pytestmark = pytest.mark.broker


async def _roundtrip(url: str) -> bytes:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        sub = await nc.subscribe("t.x")
        await nc.publish("t.x", b"hello")
        msg = await sub.next_msg(timeout=2)
        return msg.data
    finally:
        await nc.close()


def test_broker_fixture_serves_clients(broker: BrokerServer) -> None:
    assert broker.url.startswith("nats://127.0.0.1:")
    assert broker.running and broker.healthy()
    assert asyncio.run(_roundtrip(broker.url)) == b"hello"
    varz = broker.varz()
    assert varz["port"] == int(broker.url.rsplit(":", 1)[1])
    assert varz["host"] == "127.0.0.1"
    assert broker.jsz()["config"]["store_dir"].startswith(str(broker.data_dir))
    assert broker.log_path.is_file() and broker.config_path.is_file()


def test_session_broker_is_shared(broker_session: BrokerServer) -> None:
    assert asyncio.run(_roundtrip(broker_session.url)) == b"hello"


def test_stop_then_restart_keeps_url(tmp_path: Path) -> None:
    srv = BrokerServer(data_dir=tmp_path / "s")
    with srv:
        url = srv.url
        srv.stop()
        assert not srv.running and not srv.healthy()
        srv.restart()
        assert srv.url == url and srv.healthy()
        assert asyncio.run(_roundtrip(srv.url)) == b"hello"
    assert not srv.running
    assert (tmp_path / "s").is_dir()  # a given data_dir is kept


def test_temporary_data_dir_removed_on_close() -> None:
    with BrokerServer() as srv:
        d = srv.data_dir
        assert d.is_dir()
    assert not d.exists()


def test_unknown_option_is_a_config_error(tmp_path: Path) -> None:
    srv = BrokerServer(data_dir=tmp_path / "s", extra_config={"no_such_option": 1})
    with pytest.raises(ConfigError, match="no_such_option"):
        srv.start()
    assert not srv.running


def test_bad_setting_is_refused_before_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="http_port"):
        BrokerServer(data_dir=tmp_path / "s", http_port=70000).start()
    with pytest.raises(ConfigError, match="domain"):
        BrokerServer(data_dir=tmp_path / "t", domain="bad domain").start()


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        BrokerServer(data_dir=tmp_path / "s", binary=tmp_path / "nope")
    monkeypatch.setenv("EVFABRIC_NATS_SERVER", str(tmp_path / "absent-nats-server"))
    with pytest.raises(ConfigError, match="EVFABRIC_NATS_SERVER"):
        BrokerServer(data_dir=tmp_path / "s")


def test_port_in_use_fails_with_log_tail(tmp_path: Path, broker: BrokerServer) -> None:
    # a fixed port that is taken: no retry, a BrokerUnavailable that shows the server's log
    port = int(broker.url.rsplit(":", 1)[1])
    srv = BrokerServer(data_dir=tmp_path / "s", port=port, startup_timeout=10)
    with pytest.raises(BrokerUnavailable, match="address already in use"):
        srv.start()
    assert not srv.running


def test_reload_applies_new_settings_and_refuses_bad_ones(broker: BrokerServer) -> None:
    assert broker.varz()["max_payload"] != 4096
    broker.settings.max_payload = 4096
    broker.reload()
    assert wait_until(lambda: broker.varz()["max_payload"] == 4096, timeout=10)
    broker.settings.extra["not_an_option"] = True
    with pytest.raises(ConfigError, match="not_an_option"):
        broker.reload()
    assert broker.running and broker.healthy()


def test_reload_wait_needs_an_answer_not_a_failed_request(tmp_path: Path) -> None:
    """``reload(wait=True)`` returns once the server says it loaded the new config: monitoring
    requests that fail meanwhile (a loaded machine) are asked again, never taken as the answer;
    a reload never confirmed raises instead of returning as if it had worked."""
    with BrokerServer(data_dir=tmp_path / "b") as srv:
        real = srv.monitor
        calls = {"varz": 0}

        def flaky(endpoint: str) -> dict:
            if endpoint == "varz":
                calls["varz"] += 1
                if 2 <= calls["varz"] <= 6:  # the first answers (before the SIGHUP), the next five fail
                    raise BrokerUnavailable("monitoring endpoint: timed out")
            return real(endpoint)

        srv.monitor = flaky  # type: ignore[method-assign]
        srv.settings.max_payload = 4096
        srv.reload(wait=True)
        assert calls["varz"] > 6
        srv.monitor = real  # type: ignore[method-assign]
        assert srv.varz()["max_payload"] == 4096  # loaded when reload returned, not some time later

        frozen = real("varz")
        srv.monitor = lambda endpoint: frozen  # type: ignore[method-assign]  # the server never says so
        with pytest.raises(BrokerUnavailable, match="did not confirm"):
            srv.reload(wait=True, timeout=0.5)


def test_config_hook_edits_generated_config(tmp_path: Path) -> None:
    from evfabric.broker.config import ServerSettings, build_config, render_config

    def hook(settings: ServerSettings, conf: dict) -> None:
        conf["accounts"] = {"APP": {"jetstream": "enabled", "users": [{"user": "a", "password": "p"}]}}

    s = ServerSettings(data_dir=tmp_path, port=4222, http_port=8222, hooks=[hook])
    text = render_config(build_config(s))
    assert 'accounts: {\n  APP: {' in text and 'user: "a"' in text
