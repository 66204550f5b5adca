"""Overlapping best-effort subscriptions of one client decode each message once: NATS sends a copy
per matching subscription, and the client's feeds share the decoded events of the same message
(same subject, Evf-Stream, Evf-Seq and bytes), never those of a message that only claims to be it."""

from __future__ import annotations

import pytest
from _fabric_helpers import unique, wait_until
from nats.aio.msg import Msg

import evfabric
from evfabric.core.event import make_event
from evfabric.fabric.consumers import DecodedRecently
from evfabric.fabric.losses import LossReport
from evfabric.fabric.stats import FabricStats
from evfabric.wire import encode_events


def _msg(subject: str, data: bytes, headers: dict[str, str]) -> Msg:
    return Msg(_client=None, subject=subject, data=data, headers=headers)  # type: ignore[arg-type]


def test_copies_share_their_decoding_and_others_do_not() -> None:
    headers, data = encode_events([make_event("lab.t", {"i": i}, source="s") for i in range(3)], "columns")
    headers = {**headers, "Evf-Stream": "a" * 16, "Evf-Seq": "7"}
    losses = LossReport(FabricStats(), None)  # type: ignore[arg-type]
    decoded = DecodedRecently(size=2)
    decoded.enabled = True  # (a client turns it on once it has two feeds)
    first = decoded.decode(losses, _msg("evf._.0.lab.t", data, headers), raw=False)
    copy = decoded.decode(losses, _msg("evf._.0.lab.t", bytes(data), headers), raw=False)
    assert first is copy and decoded.hits == 1 and [ev.body["i"] for ev in first] == [0, 1, 2]
    _, other = encode_events([make_event("lab.t", {"i": 9}, source="s")], "columns")
    forged = decoded.decode(losses, _msg("evf._.0.lab.t", other, headers), raw=False)  # same headers, other bytes
    assert forged is not None and [ev.body["i"] for ev in forged] == [9] and decoded.hits == 1
    elsewhere = decoded.decode(losses, _msg("evf._.0.lab.u", data, headers), raw=False)  # another subject
    assert elsewhere is not first and decoded.hits == 1
    assert len(decoded._recent) == 2  # bounded: the oldest went
    decoded.enabled = False  # one feed left: nothing is kept alive
    assert not decoded._recent and decoded.decode(losses, _msg("evf._.0.lab.t", data, headers), raw=False) is not first
    few = DecodedRecently(size=10, max_events=4)
    few.enabled = True
    for seq in range(3):  # 3 events each: at most 4 events kept, and always the newest message
        few.decode(losses, _msg("evf._.0.lab.t", data, {**headers, "Evf-Seq": str(seq)}), raw=False)
    assert list(few._recent) == [("evf._.0.lab.t", "a" * 16, "2")]


@pytest.mark.broker
def test_overlapping_subscriptions_decode_once(broker) -> None:
    root = unique("ovl")
    with evfabric.connect(broker.url, source="reader") as reader, evfabric.connect(broker.url, source="w") as writer:
        wide: list = []
        narrow: list = []
        reader.subscribe(f"{root}.*", listener=wide.append, delivery="best_effort")
        reader.subscribe(f"{root}.probe.temp", listener=narrow.append, delivery="best_effort")
        writer.publish_many(f"{root}.probe.temp", [{"i": i} for i in range(500)], delivery="best_effort")
        writer.publish(f"{root}.door", {"open": True}, delivery="best_effort")
        writer.flush(10)
        assert wait_until(lambda: len(wide) == 501 and len(narrow) == 500), (len(wide), len(narrow))
        decoded = reader._core.receiving.decoded
        assert decoded.hits >= 1, "the narrow feed decoded its copies again"
        assert [ev.body["i"] for ev in narrow] == list(range(500))
        assert all(a is b for a, b in zip(narrow, [ev for ev in wide if ev.topic == f"{root}.probe.temp"]))
