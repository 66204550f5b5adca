"""Instruments over MQTT (nats-server's MQTT listener, as `evfabric serve --mqtt PORT` turns it on),
with paho-mqtt against a real server: device JSON reaches evfabric subscribers as events, evfabric
events reach MQTT subscribers as JSON, and access control holds MQTT users to their tokens."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt
import pytest
from _codec_helpers import evf_subject, unique, wait_until
from typer.testing import CliRunner

import evfabric
from evfabric.access import AccessStore
from evfabric.access.control import AccessControl
from evfabric.access.tokens import parse_token
from evfabric.broker.config import ServerSettings
from evfabric.broker.server import BrokerServer
from evfabric.cli import app
from evfabric.core.event import make_event
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import pattern_filter
from evfabric.wire import RAW_TYPE, encode_events

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[BrokerServer]:
    srv = BrokerServer(settings=ServerSettings(data_dir=tmp_path / "broker", mqtt_port=0))
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


class Device:
    """A paho-mqtt client, its loop in paho's thread; records what it receives."""

    def __init__(self, port: int, client_id: str, user: str | None = None, password: str | None = None) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.reason: Any = None
        self.granted: list[Any] = []
        self.received: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, msg: self.received.append((msg.topic, msg.payload))
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK from the server"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.reason = reason
        self.connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        self.granted = list(reasons)
        self.subscribed.set()

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(10)

    def subscribe(self, topic: str) -> list[Any]:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=0)
        assert self.subscribed.wait(10), "no SUBACK from the server"
        return self.granted

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_filter(topic: str) -> str:
    """The MQTT topic filter of the subjects an evfabric ``topic`` travels on (any publisher, partition)."""
    return pattern_filter(topic)[0].replace(".", "/").replace("*", "+")


def test_serve_mqtt_turns_the_listener_on(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["serve", "--config-only", "-d", str(tmp_path / "d"), "--port", "0",
                                   "--http-port", "0", "--mqtt", "18830"])
    assert res.exit_code == 0, res.output
    assert 'listen: "127.0.0.1:18830"' in res.output and "server_name:" in res.output and "jetstream" in res.output


def test_device_json_arrives_as_an_event(mqtt_broker: BrokerServer) -> None:
    root = unique("lab")
    with evfabric.connect(mqtt_broker.url, source="reader") as client:
        got: list = []
        sub = client.subscribe(f"{root}.probe.temp", raw=True, listener=got.append)
        device = Device(mqtt_broker.settings.mqtt_port, "probe-42")
        try:
            device.publish(f"{root}/probe/temp", b'{"t": 21.5, "unit": "C"}', qos=0)
            device.publish(f"{root}/probe/temp", b'{"t": 21.75, "unit": "C"}', qos=1)
            assert wait_until(lambda: len(got) == 2), f"{len(got)} of 2 events, garbage {sub.stats.garbage}"
        finally:
            device.close()
        assert sorted(ev.body["t"] for ev in got) == [21.5, 21.75]
        for ev in got:
            assert ev.topic == f"{root}.probe.temp" and ev.type == RAW_TYPE and ev.publisher is None
            assert ev.source == f"mqtt:{root}/probe/temp"
        assert sub.stats.garbage == 0


def test_evfabric_events_reach_mqtt_subscribers_as_json(mqtt_broker: BrokerServer) -> None:
    topic = unique("lab") + ".probe.cmd"
    device = Device(mqtt_broker.settings.mqtt_port, "panel-1")
    try:
        assert device.subscribe(mqtt_filter(topic))[0].value < 0x80
        ev = make_event(topic, {"setpoint": 19.5}, source="controller")
        # what a publisher with wire="cloudevents-structured" (or "json") sends on the topic's subject

        async def publish() -> None:
            nc = await nats.connect(mqtt_broker.url)
            for fmt in ("cloudevents-structured", "json"):
                headers, payload = encode_events([ev], fmt)
                await nc.publish(evf_subject(topic), payload, headers=headers)
            await flush(nc)
            await nc.close()

        asyncio.run(publish())
        assert wait_until(lambda: len(device.received) == 2)
    finally:
        device.close()
    (t1, structured), (t2, rows) = device.received
    assert t1 == t2 == evf_subject(topic).replace(".", "/")
    ce = json.loads(structured)
    assert (ce["specversion"], ce["id"], ce["source"], ce["subject"], ce["data"]) == ("1.0", ev.id, "controller",
                                                                                    topic, {"setpoint": 19.5})
    assert json.loads(rows)[0]["body"] == {"setpoint": 19.5}


def test_access_control_applies_to_mqtt_users(mqtt_broker: BrokerServer) -> None:
    root = unique("lab")
    topic = f"{root}.probe.temp"
    store = AccessStore.in_dir(mqtt_broker.data_dir)
    store.create_identity("root", admin=True)
    store.create_identity("alice")
    store.create_identity("bob")
    store.grant(topic, "alice", ["publish"])  # before the broker enforces it: no moment without it
    control = AccessControl(store, poll_interval=0.2)
    control.attach(mqtt_broker)
    root_tok, alice_tok, bob_tok = (store.issue_token(n).secret for n in ("root", "alice", "bob"))
    port = mqtt_broker.settings.mqtt_port
    log = mqtt_broker.log_path

    def violated(who: str, subject: str) -> bool:
        return f'"{who}" - Publish Violation - Subject "{subject}"' in log.read_text()

    try:
        for refused in (Device(port, "anon"), Device(port, "forger", parse_token(alice_tok), "evf_not-the-token")):
            assert refused.reason.is_failure and "authorized" in str(refused.reason)
            refused.close()
        with evfabric.connect(mqtt_broker.url, source="reader", token=root_tok) as client:
            got: list = []
            client.subscribe(topic, listener=got.append)
            alice = Device(port, "alice-probe", parse_token(alice_tok), alice_tok)  # token id as user name
            bob = Device(port, "bob-probe", parse_token(bob_tok), bob_tok)
            try:
                assert not alice.reason.is_failure and not bob.reason.is_failure
                mine = evf_subject(topic, "alice")
                # a device publishes under its own identity, which the broker binds: the subject it
                # may use is evf/<identity>/<partition>/<topic>; its payload is plain JSON
                bob.publish(evf_subject(topic, "bob").replace(".", "/"), b'{"who": "bob"}', qos=1)
                alice.publish(evf_subject(topic, "bob").replace(".", "/"), b'{"who": "forged"}', qos=1)
                assert wait_until(lambda: violated("bob-probe", evf_subject(topic, "bob")))  # no grant
                assert wait_until(lambda: violated("alice-probe", evf_subject(topic, "bob")))  # not hers
                assert alice.subscribe(mqtt_filter("secret.topic"))[0].is_failure  # no grant: no subscription
                alice.publish(mine.replace(".", "/"), b'{"who": "alice", "t": 21.5}', qos=1)
                assert wait_until(lambda: len(got) >= 1)
            finally:
                alice.close()
                bob.close()
            assert [(ev.body, ev.publisher, ev.source, ev.topic) for ev in got] == [
                ({"who": "alice", "t": 21.5}, "alice", "mqtt:alice", topic)]
    finally:
        control.close()


def test_an_mqtt_payload_on_an_evfabric_subject_is_one_event(mqtt_broker: BrokerServer) -> None:
    topic = unique("lab") + ".probe.temp"
    with evfabric.connect(mqtt_broker.url, source="reader") as client:
        got: list = []
        sub = client.subscribe(topic, listener=got.append)
        device = Device(mqtt_broker.settings.mqtt_port, "probe-7")
        try:
            device.publish(evf_subject(topic).replace(".", "/"), b"21.5", qos=0)
            assert wait_until(lambda: len(got) == 1), sub.stats
        finally:
            device.close()
    assert (got[0].body, got[0].source, got[0].publisher, sub.stats.garbage) == ({"data": 21.5}, "mqtt:_", None, 0)


def test_a_raw_topic_stores_what_devices_publish_and_answers_them(mqtt_broker: BrokerServer) -> None:
    """A device publishes before any evfabric reader exists: the raw topic's stream kept it, and a
    reader that comes later replays it reliably; an evfabric event on the raw topic reaches an MQTT
    subscriber as the body alone."""
    root = unique("lab")
    with evfabric.connect(mqtt_broker.url, source="controller") as client:
        client.create_topic(root, raw=True)
        device = Device(mqtt_broker.settings.mqtt_port, "probe-9")
        try:
            assert device.subscribe(f"{root}/probe/cmd")[0].value < 0x80
            for t in (20.0, 20.5, 21.0):
                device.publish(f"{root}/probe/temp", json.dumps({"t": t}).encode(), qos=1)
            assert wait_until(lambda: client.describe_topic(root).messages == 3)
            got: list = []
            sub = client.subscribe(f"{root}.probe.temp", start="earliest", listener=got.append)
            assert wait_until(lambda: len(got) == 3), (len(got), sub.stats)
            assert [ev.body["t"] for ev in got] == [20.0, 20.5, 21.0]
            assert {ev.source for ev in got} == {f"mqtt:{root}/probe/temp"} and sub.stats.garbage == 0
            client.publish(f"{root}.probe.cmd", {"setpoint": 19.5}, delivery="reliable")
            assert wait_until(lambda: len(device.received) == 1)
        finally:
            device.close()
    assert device.received == [(f"{root}/probe/cmd", b'{"setpoint":19.5}')]
