"""The in-process service in synchronous mode: the CCA semantics."""

import logging

import pytest

from evfabric import CCAEventService, EventService
from evfabric.core.errors import (
    ConfigError,
    InvalidEvent,
    InvalidFilter,
    InvalidPattern,
    InvalidTopic,
    ReservedTopic,
    ServiceClosed,
)


@pytest.fixture
def svc():
    s = EventService(source="test-component")
    yield s
    s.close()


def test_events_wait_for_process_events(svc):
    got = []
    svc.subscribe("functions.signals.*", listener=got.append)
    svc.publish("functions.signals.iteration", {"i": 1})
    svc.publish("functions.signals.currentStepDone.time", {"t": 0.5})
    svc.publish("functions.other", {})
    assert got == []
    assert svc.process_events() == 2
    assert [e.topic for e in got] == ["functions.signals.iteration", "functions.signals.currentStepDone.time"]
    assert got[0].source == "test-component" and got[0].body == {"i": 1}
    assert svc.process_events() == 0


def test_publish_order_per_topic_and_seq(svc):
    got = []
    svc.subscribe("t.?", listener=got.append)
    for i in range(100):
        svc.publish(f"t.{i % 3}", {"i": i})
    svc.process_events()
    for k in range(3):
        seen = [e.body["i"] for e in got if e.topic == f"t.{k}"]
        assert seen == sorted(seen) and len(seen) == len(range(k, 100, 3))
    seqs = [e.seq for e in got]
    assert seqs == sorted(seqs)


def test_several_listeners_and_subscriptions(svc):
    calls = []
    a = svc.subscribe("x.*")
    a.add_listener(lambda e: calls.append(("a1", e.topic)))
    a.add_listener(lambda e: calls.append(("a2", e.topic)))
    svc.subscribe("x.y", listener=lambda e: calls.append(("b", e.topic)))
    svc.publish("x.y")
    assert svc.process_events() == 3
    assert calls == [("a1", "x.y"), ("a2", "x.y"), ("b", "x.y")]


def test_remove_listener_and_unsubscribe(svc):
    got = []
    sub = svc.subscribe("a")
    sub.add_listener(got.append)
    svc.publish("a")
    svc.process_events()
    assert sub.remove_listener(got.append) and not sub.remove_listener(got.append)
    svc.publish("a")
    svc.process_events()
    sub.add_listener(got.append)
    sub.unsubscribe()
    svc.publish("a")
    svc.process_events()
    assert len(got) == 1 and svc.stats.subscriptions == 0


def test_unsubscribed_before_flush_gets_nothing(svc):
    got = []
    sub = svc.subscribe("a", listener=got.append)
    svc.publish("a")
    sub.unsubscribe()
    svc.process_events()
    assert got == []


def test_filter_runs_in_the_service(svc):
    got = []
    svc.subscribe("lab.*", filter="body.temperature > 30.0", listener=got.append)
    for t in (10.0, 35.0, 31.0, 29.9):
        svc.publish("lab.probe", {"temperature": t})
    svc.publish("lab.probe", {"pressure": 1.0})  # evaluation error: not delivered, counted
    svc.process_events()
    assert [e.body["temperature"] for e in got] == [35.0, 31.0]
    assert svc.stats.filter_errors == 1


def test_failing_listener_does_not_stop_others(svc, caplog):
    got, failures = [], []
    svc.subscribe("cca.listener.failed", listener=failures.append)
    svc.subscribe("a", listener=lambda e: 1 / 0)
    svc.subscribe("a", listener=got.append)
    with caplog.at_level(logging.ERROR, logger="evfabric.local"):
        svc.publish("a")
        svc.process_events()
    assert len(got) == 1
    assert failures and "ZeroDivisionError" in failures[0].body["error"] and failures[0].body["topic"] == "a"
    assert svc.stats.listener_errors == 1
    assert "ZeroDivisionError" in caplog.text


def test_framework_events(svc):
    seen = []
    svc.subscribe("cca.*", listener=lambda e: seen.append((e.topic, e.body)))
    sub = svc.subscribe("x.*")
    svc.publish("x.y")
    sub.unsubscribe()
    svc.process_events()
    topics = [t for t, _ in seen]
    # the cca.* subscriber sees its own addition first
    assert topics == ["cca.subscription.added", "cca.subscription.added", "cca.topic.created", "cca.subscription.removed"]
    assert seen[1][1] == {"subscription": "sub-2", "pattern": "x.*", "filter": None}
    assert seen[2][1] == {"topic": "x.y"}


def test_wildcards_do_not_see_framework_events(svc):
    got = []
    svc.subscribe("*", listener=got.append)
    svc.subscribe("?", listener=got.append)
    svc.publish("a")
    svc.process_events()
    assert [e.topic for e in got] == ["a", "a"]


def test_bad_input_refused_and_service_keeps_serving(svc):
    got = []
    svc.subscribe("ok", listener=got.append)
    with pytest.raises(ReservedTopic):
        svc.publish("cca.fake")
    with pytest.raises(InvalidTopic):
        svc.publish("bad topic")
    with pytest.raises(InvalidEvent, match=r"body\.x"):
        svc.publish("ok", {"x": object()})
    with pytest.raises(InvalidEvent, match="'ttl'"):
        svc.publish("ok", {}, ttl="soon")
    with pytest.raises(InvalidPattern):
        svc.subscribe("a..b")
    with pytest.raises(InvalidFilter):
        svc.subscribe("a", filter="body.x >")
    svc.publish("ok", {"fine": True})
    svc.process_events()
    assert len(got) == 1


def test_header_fields_and_extras(svc):
    got = []
    svc.subscribe("a", listener=got.append)
    svc.publish("a", {"v": 1}, type="reading", delivery="reliable", key="k", source="probe-3", run="r1")
    svc.process_events()
    ev = got[0]
    assert (ev.type, ev.delivery, ev.key, ev.source, ev.extra) == ("reading", "reliable", "k", "probe-3", {"run": "r1"})


def test_listener_may_publish_and_call_process_events(svc):
    order = []

    def relay(ev):
        order.append(ev.topic)
        if ev.topic == "first":
            svc.publish("second")
            assert svc.process_events() == 0  # re-entrant flush is a no-op; the running one goes on

    svc.subscribe("*", listener=relay)
    svc.publish("first")
    assert svc.process_events() == 2
    assert order == ["first", "second"]


def test_expired_events_not_delivered():
    from evfabric.core.clocks import ManualClock

    clock = ManualClock()
    svc = EventService(clock=clock)
    got, expired = [], []
    svc.subscribe("a", listener=got.append)
    svc.subscribe("cca.events.expired", listener=expired.append)
    ev = svc.publish("a", {}, ttl=5)
    kept = svc.publish("a", {}, ttl=3600)
    clock.advance(10)
    svc.process_events()
    assert got == [kept] and svc.stats.expired == 1 and ev.expired(clock.time())
    assert expired and expired[0].body["count"] == 1


def test_closed_service_refuses(svc):
    svc.close()
    with pytest.raises(ServiceClosed):
        svc.publish("new.topic")
    with pytest.raises(ServiceClosed):
        svc.subscribe("a")


@pytest.mark.parametrize(
    "kwargs",
    [dict(mode="nope"), dict(queue_size=0), dict(overflow="lose"), dict(source=""), dict(mode="threads", workers=0)],
)
def test_bad_config_refused(kwargs):
    with pytest.raises((ConfigError, InvalidEvent)):
        EventService(**kwargs)


def test_cca_facade():
    services = CCAEventService(EventService(source="solver"))
    got = []

    class Printer:
        def processEvent(self, topicName, theEvent):
            got.append((topicName, theEvent.body))

    topic = services.publisher.createTopic("functions.signals.iteration")
    assert topic.getTopicName() == "functions.signals.iteration"
    sub = services.subscriber.getSubscription("functions.signals.*")
    sub.registerEventListener("printer", Printer())
    topic.sendEvent({"type": "iteration"}, {"i": 1})
    assert services.subscriber.processEvents() == 1
    assert got == [("functions.signals.iteration", {"i": 1})]
    assert services.publisher.existsTopic("functions.signals.iteration")
    sub.unregisterEventListener("printer")
    topic.sendEvent(None, {"i": 2})
    assert services.subscriber.processEvents() == 0
    services.subscriber.releaseSubscription(sub)
    assert services.service.stats.subscriptions == 0
