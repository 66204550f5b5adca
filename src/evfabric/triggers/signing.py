"""Signed trigger definitions: the runner starts only what the evfabric service wrote.

The definitions bucket is a JetStream stream like any other: bytes can reach it by other means
than the trigger API (a stream's ``republish`` into ``$KV.evf_triggers.<name>``, a raw KV put by a
client that slipped past the permissions). So each stored definition is an envelope::

    {"v": 1, "spec": "<the TriggerSpec as JSON>", "creator": "alice", "mac": "<hex>"}

where ``mac`` is HMAC-SHA256, under the service's :class:`TriggerKey`, of the key name, the
creator and the spec bytes. ``creator`` is the identity that wrote the definition through the
service (the REST caller); ``null`` means the holder of the key itself (an administrator of the
host, e.g. ``evfabric trigger create -d DATA_DIR``). The key is 32 random bytes in
``<data dir>/trigger.key``, mode 0600, made on first use; it never leaves the host. A runner
with the key refuses every definition whose MAC does not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import msgspec

from evfabric.core.errors import ConfigError

__all__ = ["KEY_FILE", "Envelope", "TriggerKey", "open_envelope"]

KEY_FILE = "trigger.key"
_DOMAIN = b"evfabric-trigger-v1\x00"


class Envelope(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A stored definition: the spec's bytes, who wrote it, and the MAC over both (None: unsigned)."""

    v: int = 1
    spec: str
    creator: str | None = None
    mac: str | None = None


_decode_envelope = msgspec.json.Decoder(Envelope)


def open_envelope(data: bytes) -> Envelope:
    """The envelope stored as ``data``; a bare spec (older stores) becomes an unsigned envelope.
    :class:`ConfigError` when the bytes are neither."""
    try:
        return _decode_envelope.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"stored trigger definition is not JSON: {exc}") from None
    return Envelope(spec=data.decode())


class TriggerKey:
    """The service's key for signing and verifying definitions."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError(f"trigger key: {len(secret)} bytes is too short (at least 16)")
        self._secret = secret

    @classmethod
    def in_dir(cls, data_dir: str | os.PathLike[str]) -> TriggerKey:
        """The key in ``data_dir/trigger.key``, made (0600) if missing."""
        path = Path(data_dir) / KEY_FILE
        if not path.exists():  # written whole, then linked: a concurrent reader never sees it half made
            tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            finally:
                tmp.unlink()
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except ValueError:
            raise ConfigError(f"trigger key {path} is not hex; delete it to make a new one") from None

    def _mac(self, name: str, creator: str | None, spec: bytes) -> str:
        msg = _DOMAIN + name.encode() + b"\x00" + (creator or "").encode() + b"\x00" + spec
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def seal(self, name: str, creator: str | None, spec: bytes) -> Envelope:
        """The signed envelope of a definition."""
        return Envelope(spec=spec.decode(), creator=creator, mac=self._mac(name, creator, spec))

    def verifies(self, name: str, envelope: Envelope) -> bool:
        """True when ``envelope`` was sealed with this key under ``name``."""
        if envelope.mac is None:
            return False
        return hmac.compare_digest(envelope.mac, self._mac(name, envelope.creator, envelope.spec.encode()))
