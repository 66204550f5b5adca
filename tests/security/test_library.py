"""Issue #10 point 10: library users get access control explicitly (``BrokerServer(access=...)``),
and importing the CLI registers no config hook that would change what a library server does."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import pytest

from evfabric.access import AccessStore, nats_options
from evfabric.access.control import AccessControl
from evfabric.broker import config as server_config
from evfabric.testing import connection_refused as refused
from evfabric.testing import running_broker

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_importing_the_cli_registers_no_hook() -> None:
    importlib.import_module("evfabric.cli")
    assert server_config._GLOBAL_HOOKS == []


def test_broker_server_access_is_enforced_from_the_first_start(tmp_path: Path) -> None:
    store = AccessStore.in_dir(tmp_path / "b")
    store.create_identity("alice")
    tok = store.issue_token("alice").secret
    control = AccessControl(store)
    try:
        with running_broker(tmp_path / "b", access=control) as srv:
            text = srv.config_path.read_text()
            assert "authorization" in text  # the very first config written

            async def main() -> None:
                assert await refused(srv.url)  # anonymous
                assert await refused(srv.url, user="alice", password="guess")
                assert not await refused(srv.url, **nats_options(tok))  # positive control

            asyncio.run(main())
            assert control.service is not None and control.service.running  # the topic service runs
    finally:
        control.close()


def test_without_access_a_library_server_is_open_whatever_the_directory(tmp_path: Path) -> None:
    """Explicit means explicit: no hidden hook decides from the directory's contents."""
    AccessStore.in_dir(tmp_path / "b").create_identity("alice")
    with running_broker(tmp_path / "b") as srv:
        assert "authorization" not in srv.config_path.read_text()

        async def main() -> Any:
            return await refused(srv.url)

        assert asyncio.run(main()) is False
