"""Managing triggers: create, list, describe, update, enable/disable, delete, read their logs.

Definitions are validated here, at creation and update, without importing anything (see
:func:`~evfabric.triggers.spec.validate_spec`), so a bad one (invalid pattern or filter,
malformed target, impossible numbers) is refused with a clear error before any runner sees it;
a module the runner cannot import is reported by the runner. With the service's
:class:`~evfabric.triggers.signing.TriggerKey` (``key=``), what the manager writes is signed, so
that runners holding the key start it; without it the definitions are unsigned and only a
runner that accepts unsigned definitions (no access control) runs them.
:class:`TriggerManager` is the asyncio API over an :class:`~evfabric.fabric.aio.AsyncClient`;
:class:`Triggers` is the same for the blocking :class:`~evfabric.fabric.client.Client`.
"""

from __future__ import annotations

import builtins
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from evfabric.core.errors import ConfigError
from evfabric.triggers import log as invocation_log
from evfabric.triggers.runner import delete_consumers
from evfabric.triggers.signing import TriggerKey
from evfabric.triggers.spec import ActionSpec, TriggerSpec, validate_spec
from evfabric.triggers.store import TriggerStore

if TYPE_CHECKING:
    from evfabric.fabric.aio import AsyncClient
    from evfabric.fabric.client import Client

__all__ = ["TriggerManager", "Triggers", "make_spec"]

T = TypeVar("T")


def make_spec(name: str, pattern: str, action: ActionSpec | dict[str, Any] | str, **options: Any) -> TriggerSpec:
    """Build and validate a :class:`TriggerSpec`.

    ``action`` may be an :class:`ActionSpec`, a dict (``{"kind": "shell", "target": "..."}``), or a
    string: ``"package.module:function"`` (python), ``"http(s)://..."`` (webhook), else a shell command.
    """
    if isinstance(action, str):
        if action.startswith(("http://", "https://")):
            action = ActionSpec(kind="webhook", target=action)
        elif ":" in action and " " not in action and "/" not in action:
            action = ActionSpec(kind="python", target=action)
        else:
            action = ActionSpec(kind="shell", target=action)
    try:
        if isinstance(action, dict):
            action = msgspec.convert(action, ActionSpec)
        spec = msgspec.convert({"name": name, "pattern": pattern, "action": msgspec.to_builtins(action), **options}, TriggerSpec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"trigger {name!r}: {exc}") from None
    return validate_spec(spec)


class TriggerManager:
    """Create and manage triggers through an asyncio fabric client (``key``: sign what it writes)."""

    def __init__(self, client: AsyncClient, key: TriggerKey | None = None) -> None:
        self.client = client
        self.store = TriggerStore(client.js, key=key, nc=client.nc)

    async def create(self, name: str, pattern: str, action: ActionSpec | dict[str, Any] | str, *,
                     creator: str | None = None, **options: Any) -> TriggerSpec:
        """Validate and store a new trigger; runners start it within a moment. ``creator``: the
        identity the service writes it for (None: the key holder)."""
        spec = make_spec(name, pattern, action, **options)
        await self.store.create(spec, creator)
        return spec

    async def get(self, name: str) -> TriggerSpec:
        """The definition of ``name`` (:class:`NotFound` if none)."""
        return await self.store.get(name)

    async def list(self) -> builtins.list[TriggerSpec]:
        """Every trigger, by name."""
        return await self.store.list()

    async def update(self, name: str, *, creator: str | None = None, **changes: Any) -> TriggerSpec:
        """Change fields of a trigger (validated as a whole); runners restart it with the new definition."""
        current = msgspec.to_builtins(await self.store.get(name))
        if "action" in changes and isinstance(changes["action"], ActionSpec):
            changes["action"] = msgspec.to_builtins(changes["action"])
        current.update(changes)
        current.pop("name")
        spec = make_spec(name, current.pop("pattern"), current.pop("action"), **current)
        await self.store.put(spec, creator)
        return spec

    async def enable(self, name: str, *, creator: str | None = None) -> TriggerSpec:
        return await self.update(name, creator=creator, enabled=True)

    async def disable(self, name: str, *, creator: str | None = None) -> TriggerSpec:
        return await self.update(name, creator=creator, enabled=False)

    async def delete(self, name: str) -> None:
        """Remove a trigger and its consumers (events it had not acted on are left to the topic).

        Replicas still pulling may re-create a consumer before they see the definition go; each
        deletes the trigger's consumers again once it has stopped it
        (:func:`~evfabric.triggers.runner.delete_consumers`)."""
        spec = await self.store.get(name)
        await self.store.delete(name)
        await delete_consumers(self.client, name, spec.pattern)

    async def logs(self, name: str, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """The newest invocation records of ``name`` (status, duration, error...), oldest first."""
        await self.store.get(name)
        return await invocation_log.read_log(self.client.js, name, limit=limit)

    async def describe(self, name: str) -> dict[str, Any]:
        """Definition, counters summed over replicas, and the newest invocations."""
        spec = await self.store.get(name)
        records = await invocation_log.read_log(self.client.js, name, limit=invocation_log.KEEP_PER_TRIGGER)
        return {
            "definition": msgspec.to_builtins(spec),
            "counters": invocation_log.summarize(records),
            "recent": records[-10:],
        }


class Triggers:
    """The blocking twin of :class:`TriggerManager`, for a :func:`evfabric.connect` client."""

    def __init__(self, client: Client, key: TriggerKey | None = None) -> None:
        self._client = client
        self._async = TriggerManager(client.aio, key=key)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._client._run(coro, 60.0)

    def create(self, name: str, pattern: str, action: ActionSpec | dict[str, Any] | str, **options: Any) -> TriggerSpec:
        return self._run(self._async.create(name, pattern, action, **options))

    def get(self, name: str) -> TriggerSpec:
        return self._run(self._async.get(name))

    def list(self) -> builtins.list[TriggerSpec]:
        return self._run(self._async.list())

    def update(self, name: str, **changes: Any) -> TriggerSpec:
        return self._run(self._async.update(name, **changes))

    def enable(self, name: str) -> TriggerSpec:
        return self._run(self._async.enable(name))

    def disable(self, name: str) -> TriggerSpec:
        return self._run(self._async.disable(name))

    def delete(self, name: str) -> None:
        self._run(self._async.delete(name))

    def logs(self, name: str, limit: int = 50) -> builtins.list[dict[str, Any]]:
        return self._run(self._async.logs(name, limit))

    def describe(self, name: str) -> dict[str, Any]:
        return self._run(self._async.describe(name))
