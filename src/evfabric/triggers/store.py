"""Trigger definitions stored in the fabric itself: a JetStream key-value bucket.

Every runner replica and every manager reads the same bucket (``evf_triggers``, one key per
trigger), so they all see the same set; runners watch it and start, update or stop triggers as it
changes. Each value is an :class:`~evfabric.triggers.signing.Envelope`: the
:class:`~evfabric.triggers.spec.TriggerSpec` as JSON, its creator, and a MAC when the store has
the service's :class:`~evfabric.triggers.signing.TriggerKey` (runners refuse what does not
verify). The bucket is the administrators': an ordinary identity's client is refused with
:class:`~evfabric.core.errors.AccessDenied` (ordinary users write triggers through the REST API).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

import msgspec
import nats.errors
import nats.js.errors as jserr
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from evfabric.core.errors import AccessDenied, AlreadyExists, BrokerUnavailable, ConfigError, NotFound
from evfabric.triggers.signing import Envelope, TriggerKey, open_envelope
from evfabric.triggers.spec import TriggerSpec

__all__ = ["BUCKET", "TriggerStore", "decode_spec"]

BUCKET = "evf_triggers"
_decode = msgspec.json.Decoder(TriggerSpec)


def decode_spec(data: bytes | str) -> TriggerSpec:
    """A definition's spec (the bytes of an envelope's ``spec``); :class:`ConfigError` if not one."""
    try:
        return _decode.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"stored trigger definition is invalid: {exc}") from None


REFUSED = "the trigger definitions are administrators' only: define triggers through the web service (POST /triggers)"


class TriggerStore:
    """Async access to the definitions bucket (created on first use, replicated like the server).

    ``key`` signs what this store writes (``creator``: who asked, None for the key holder);
    ``nc``, the connection under ``js``, tells a refusal from a broker that does not answer."""

    def __init__(self, js: JetStreamContext, replicas: int = 1, key: TriggerKey | None = None,
                 nc: NatsClient | None = None) -> None:
        self._js = js
        self._nc = nc
        self._replicas = replicas
        self._kv: KeyValue | None = None
        self.key = key

    async def kv(self) -> KeyValue:
        """The bucket, created if missing; :class:`AccessDenied` if this client may not use it."""
        if self._kv is None:
            try:
                self._kv = await self._open()
            except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
                # the broker drops API requests a client may not make: they time out
                last = str(getattr(self._nc, "last_error", "") or "")
                if "permissions violation" in last.lower():
                    raise AccessDenied(REFUSED) from None
                raise BrokerUnavailable("JetStream did not answer about the trigger definitions bucket") from None
            except jserr.APIError as exc:
                if exc.err_code == 10100 or exc.code in (401, 403):
                    raise AccessDenied(REFUSED) from None
                raise
        return self._kv

    async def _open(self) -> KeyValue:
        try:
            return await self._js.key_value(BUCKET)
        except (jserr.BucketNotFoundError, jserr.NotFoundError):
            from nats.js.api import KeyValueConfig

            return await self._js.create_key_value(
                KeyValueConfig(bucket=BUCKET, history=1, replicas=self._replicas, description="evfabric triggers")
            )

    def _encode(self, spec: TriggerSpec, creator: str | None) -> bytes:
        raw = msgspec.json.encode(spec)
        envelope = self.key.seal(spec.name, creator, raw) if self.key is not None else Envelope(
            spec=raw.decode(), creator=creator)
        return msgspec.json.encode(envelope)

    async def envelope(self, name: str) -> Envelope:
        """The stored envelope of ``name`` (unverified); :class:`NotFound` if there is none."""
        kv = await self.kv()
        try:
            entry = await kv.get(name)
        except jserr.KeyNotFoundError:
            raise NotFound(f"no trigger named {name!r}") from None
        if entry.value is None:
            raise NotFound(f"no trigger named {name!r}")
        return open_envelope(entry.value)

    async def get(self, name: str) -> TriggerSpec:
        """The definition of ``name``; :class:`NotFound` if there is none."""
        return decode_spec((await self.envelope(name)).spec)

    async def create(self, spec: TriggerSpec, creator: str | None = None) -> None:
        """Store a new definition; :class:`AlreadyExists` if the name is taken."""
        kv = await self.kv()
        try:
            await kv.create(spec.name, self._encode(spec, creator))
        except jserr.KeyWrongLastSequenceError:
            raise AlreadyExists(f"a trigger named {spec.name!r} exists already; update it instead") from None

    async def put(self, spec: TriggerSpec, creator: str | None = None) -> None:
        """Store (replace) a definition."""
        kv = await self.kv()
        await kv.put(spec.name, self._encode(spec, creator))

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
            except ConfigError:
                continue  # not a definition (the runners refuse and report it)
        return specs

    async def stored(self) -> builtins.list[tuple[str, bytes]]:
        """Every stored value as it is (unchecked), by name."""
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except jserr.NoKeysError:
            return []
        out = []
        for key in sorted(keys):
            try:
                entry = await kv.get(key)
            except jserr.KeyNotFoundError:
                continue  # deleted meanwhile
            if entry.value:
                out.append((key, entry.value))
        return out

    async def watch(self) -> AsyncIterator[tuple[str, bytes | None]]:
        """Yield ``(name, stored bytes)`` for every definition now and each change after (None:
        deleted). The bytes are unchecked: the runner opens, verifies and validates them."""
        kv = await self.kv()
        watcher = await kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:  # end of the initial values
                    continue
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    yield entry.key, None
                else:
                    yield entry.key, entry.value
        finally:
            await watcher.stop()
