"""A raw nats-py publisher that follows docs/wire.md (headers Evf-Stream / Evf-Seq / Evf-Count),
for receive-side tests that must control exactly what is sent, and poison payloads."""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec

from evfabric.fabric.subjects import topic_subject

_enc = msgspec.msgpack.Encoder()


def batch_bytes(topic: str, first: int, n: int, body: dict[str, Any] | None = None) -> bytes:
    """A version-0 row batch of ``n`` valid events (ids ``raw-<first+i>``)."""
    now = time.time()
    body = body if body is not None else {"v": 1}
    return _enc.encode([{"id": f"raw-{first + i}", "topic": topic, "source": "raw", "time": now, "body": body}
                        for i in range(n)])


class RawStream:
    """One publisher stream: consecutive Evf-Seq numbers per subject, as wire.md section 2 says."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.stream = os.urandom(8).hex()
        self.next: dict[str, int] = {}
        self.sent = 0  # events

    def headers(self, subject: str, n: int) -> dict[str, str]:
        seq = self.next.get(subject, 1)
        self.next[subject] = seq + n
        return {"Content-Type": "application/vnd.evfabric.events+msgpack", "Evf-Version": "1",
                "Evf-Stream": self.stream, "Evf-Seq": str(seq), "Evf-Count": str(n)}

    async def publish(self, topic: str, payload: bytes, n: int, partition: int = 0) -> None:
        """Publish a pre-encoded batch of ``n`` events on ``topic``'s subject."""
        subject = topic_subject(topic, partition)
        await self.nc.publish(subject, payload, headers=self.headers(subject, n))
        self.sent += n


def deep_body_batch(topic: str, depth: int = 100_000) -> bytes:
    """One event whose body nests ``depth`` maps (hand-written MessagePack: no encoder accepts it)."""
    head = _enc.encode({"id": "poison-deep", "topic": topic, "source": "raw", "time": time.time()})
    # a fixmap header says how many pairs follow: rewrite 4 -> 5 pairs and append "body": {...}
    assert head[0] == 0x84
    nested = b"\x81\xa1a" * depth + b"\x80"
    return b"\x91" + bytes([0x85]) + head[1:] + b"\xa4body" + nested


POISON_RANDOM = bytes(range(256)) * 4
POISON_TYPES = _enc.encode([{"id": 7, "topic": ["x"], "source": None, "time": "yesterday"}])
