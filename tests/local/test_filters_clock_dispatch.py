"""CEL filters that cannot work are refused or reported (issue 15); the injected clock; the
dispatcher as a strategy; the bounded match cache."""

from __future__ import annotations

import pytest

from evfabric.core.errors import InvalidFilter
from evfabric.core.event import Event
from evfabric.core.index import PatternIndex
from evfabric.local.delivery import Delivery
from evfabric.local.dispatch import SyncDispatcher
from evfabric.local.overflow import Overflow
from evfabric.local.service import EventService


def test_unknown_name_in_filter_is_refused_at_subscribe() -> None:
    svc = EventService()
    with pytest.raises(InvalidFilter, match="'bodyy'") as info:
        svc.subscribe("a.*", "bodyy.x > 3")
    assert "body" in str(info.value)  # names what it may use
    svc.subscribe("a.*", "[1, 2].exists(v, v > body.x)")  # a macro's own variable is fine


@pytest.mark.parametrize("expression", ['body.x > "3"', "body.missing > 1"])
def test_failing_filter_is_counted_and_reported_once(expression: str) -> None:
    svc = EventService()
    got: list[Event] = []
    errors: list[Event] = []
    svc.subscribe("cca.filter.error", listener=errors.append)
    sub = svc.subscribe("a.*", expression, listener=got.append)
    for i in range(5):
        svc.publish("a.b", {"x": i})
    svc.process_events()
    assert got == []
    assert svc.stats.filter_errors == 5
    assert len(errors) == 1  # reported once, not per event
    body = errors[0].body
    assert body["subscription"] == sub.name and body["filter"] == expression and body["error"]
    assert sub.filter is not None and sub.filter.last_error


def test_dispatcher_factory_is_used() -> None:
    made: list[SyncDispatcher] = []

    def factory(delivery: Delivery, capacity: int, overflow: Overflow) -> SyncDispatcher:
        made.append(SyncDispatcher(delivery, capacity, overflow))
        return made[0]

    svc = EventService(dispatcher=factory, queue_size=10)
    got: list[Event] = []
    svc.subscribe("a", listener=got.append)
    svc.publish("a", {})
    assert svc.process_events() == 1 and len(got) == 1
    assert svc.dispatcher is made[0] and made[0].capacity == 10


def test_match_cache_is_bounded_and_evicts_the_oldest() -> None:
    index: PatternIndex[str] = PatternIndex(cache_size=100)
    index.add("t.*", "sub")
    for k in range(250):
        assert index.match(f"t.{k}") == ("sub",)
    assert len(index.cache) == 100
    assert "t.249" in index.cache and "t.0" not in index.cache  # not cleared wholesale
