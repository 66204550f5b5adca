"""The trigger runner as a service of ``evfabric serve``: one replica beside the broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evfabric.access.store import AccessStore
from evfabric.broker.server import BrokerServer
from evfabric.core.errors import NotFound
from evfabric.triggers.runner import MayActAs, RunnerThread
from evfabric.triggers.signing import TriggerKey
from evfabric.triggers.spec import PRIVILEGED_KINDS, TriggerSpec
from evfabric.triggers.webhook import allowed_from_env

__all__ = ["may_act_as", "runner_options", "start_with_broker", "store_dir"]


def may_act_as(store: AccessStore) -> MayActAs:
    """The runner's check of a definition's creator against the access store: the creator still
    exists, acts only as itself unless it is an administrator, and defines ``python`` or ``shell``
    actions only as an administrator. A creator of None is the holder of the service key."""

    def check(creator: str | None, spec: TriggerSpec) -> str | None:
        if creator is None:
            return None
        try:
            ident = store.get_identity(creator)
        except NotFound:
            return f"its creator {creator!r} is not an identity any more"
        if ident.admin:
            return None
        if spec.action.kind in PRIVILEGED_KINDS:
            return f"a {spec.action.kind} action runs code on the server: {creator!r} is not an administrator"
        if spec.run_as != creator:
            return f"its creator {creator!r} may not act as {spec.run_as!r}"
        return None

    return check


def runner_options(data_dir: str | Path) -> dict[str, Any]:
    """The :class:`~evfabric.triggers.runner.TriggerRunner` options for a runner on the host of
    the broker whose data directory is ``data_dir``: under access control, the data directory's
    trigger key (verify), sessions of each trigger's ``run_as`` identity (act as it) and the
    store's check of creators (:func:`may_act_as`); without it, unsigned definitions run."""
    from evfabric.access.internal import access_enabled, identity_token

    if not access_enabled(data_dir):
        return {"accept_unsigned": True}
    return {"key": TriggerKey.in_dir(data_dir), "credentials": partial(identity_token, data_dir),
            "may_act_as": may_act_as(AccessStore.in_dir(data_dir))}


def store_dir(servers: Sequence[BrokerServer], data_dir: str | Path | None = None) -> Path | None:
    """Where the access store of ``servers`` lives: ``data_dir`` if given, else the directory of
    the store their access control enforces (the base directory of ``serve --peers N``, not a
    member's), else the first server's data directory; None without servers."""
    if data_dir is not None:
        return Path(data_dir)
    for srv in servers:
        store = getattr(srv.access, "store", None)
        if isinstance(store, AccessStore):
            return store.path.parent
    return Path(servers[0].data_dir) if servers else None


def start_with_broker(
    broker_url: str, *, monitor_url: str | None = None, servers: Sequence[BrokerServer] = (),
    data_dir: str | Path | None = None,
) -> Callable[[], None]:
    """Start a trigger runner replica on ``broker_url``; return the function that stops it.

    When the broker enforces access control, the runner connects as ``evfabric serve``'s own
    service identity (see :mod:`evfabric.access.internal`), starts only definitions signed with
    the data directory's trigger key, and runs each as its ``run_as`` identity with a session of
    that identity. Without access control it runs every definition on its own connection.
    ``data_dir``: where the access store and trigger key live (default :func:`store_dir`).
    Webhooks may reach the networks in ``$EVFABRIC_WEBHOOK_ALLOW`` besides global addresses.
    """
    url = broker_url
    options: dict[str, Any] = {"accept_unsigned": True}
    where = store_dir(servers, data_dir)
    if where is not None:
        from evfabric.access.internal import service_url

        if urlsplit(broker_url).password is None:
            url = service_url(broker_url, where)
        options = runner_options(where)
    runner = RunnerThread(url, replica="serve", webhook_allow=allowed_from_env(), **options)
    return runner.stop
