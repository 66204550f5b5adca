"""Trigger definitions stored in the fabric itself: a JetStream key-value bucket.

Every runner replica and every manager reads the same bucket (``evf_triggers``, one key per
trigger, the value is the :class:`~evfabric.triggers.spec.TriggerSpec` as JSON), so they all see
the same set; runners watch it and start, update or stop triggers as it changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import nats.js.errors as jserr
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from evfabric.core.errors import AlreadyExists, ConfigError, NotFound
from evfabric.triggers.spec import TriggerSpec

__all__ = ["BUCKET", "TriggerStore"]

BUCKET = "evf_triggers"
_decode = msgspec.json.Decoder(TriggerSpec)


def decode_spec(data: bytes) -> TriggerSpec:
    """A stored definition; :class:`ConfigError` if the bytes are not one."""
    try:
        return _decode.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"stored trigger definition is invalid: {exc}") from None


class TriggerStore:
    """Async access to the definitions bucket (created on first use, replicated like the server)."""

    def __init__(self, js: JetStreamContext, replicas: int = 1) -> None:
        self._js = js
        self._replicas = replicas
        self._kv: KeyValue | None = None

    async def kv(self) -> KeyValue:
        """The bucket, created if missing."""
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(BUCKET)
            except (jserr.BucketNotFoundError, jserr.NotFoundError):
                from nats.js.api import KeyValueConfig

                self._kv = await self._js.create_key_value(
                    KeyValueConfig(bucket=BUCKET, history=1, replicas=self._replicas, description="evfabric triggers")
                )
        return self._kv

    async def get(self, name: str) -> TriggerSpec:
        """The definition of ``name``; :class:`NotFound` if there is none."""
        kv = await self.kv()
        try:
            entry = await kv.get(name)
        except jserr.KeyNotFoundError:
            raise NotFound(f"no trigger named {name!r}") from None
        if entry.value is None:
            raise NotFound(f"no trigger named {name!r}")
        return decode_spec(entry.value)

    async def create(self, spec: TriggerSpec) -> None:
        """Store a new definition; :class:`AlreadyExists` if the name is taken."""
        kv = await self.kv()
        try:
            await kv.create(spec.name, msgspec.json.encode(spec))
        except jserr.KeyWrongLastSequenceError:
            raise AlreadyExists(f"a trigger named {spec.name!r} exists already; update it instead") from None

    async def put(self, spec: TriggerSpec) -> None:
        """Store (replace) a definition."""
        kv = await self.kv()
        await kv.put(spec.name, msgspec.json.encode(spec))

    async def delete(self, name: str) -> None:
        """Remove a definition; :class:`NotFound` if there is none."""
        await self.get(name)
        kv = await self.kv()
        await kv.purge(name)

    async def list(self) -> list[TriggerSpec]:
        """Every definition, by name."""
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except jserr.NoKeysError:
            return []
        specs = []
        for key in sorted(keys):
            try:
                specs.append(await self.get(key))
            except NotFound:
                continue  # deleted meanwhile
        return specs

    async def watch(self) -> AsyncIterator[tuple[str, TriggerSpec | None]]:
        """Yield ``(name, spec)`` for every definition now and each change after (spec None: deleted)."""
        kv = await self.kv()
        watcher = await kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:  # end of the initial values
                    continue
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    yield entry.key, None
                else:
                    try:
                        yield entry.key, decode_spec(entry.value)
                    except ConfigError:
                        yield entry.key, None
        finally:
            await watcher.stop()
