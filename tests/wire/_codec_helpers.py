"""Hypothesis strategies for valid events (as :func:`make_event` accepts them)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from evfabric.core.event import RESERVED_ATTRIBUTES, Event, make_event
from evfabric.testing import wait_until as wait_until  # re-exported: the tests here import it from here

segment = st.text(alphabet="abcxyz0189_-", min_size=1, max_size=5)
topics = st.lists(segment, min_size=1, max_size=4).map(".".join).filter(lambda t: not t.startswith("cca"))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False), st.text(max_size=12), st.binary(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=8)
bodies = st.dictionaries(st.text(max_size=6), values, max_size=4)
extra_names = st.text(alphabet="abcdefz019", min_size=1, max_size=6).filter(lambda n: n not in RESERVED_ATTRIBUTES)
extras = st.dictionaries(extra_names, st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans()), max_size=3)


@st.composite
def events(draw: Any, topic: str | None = None, json_safe: bool = False) -> Event:
    """A valid event; ``json_safe``: no bytes and no float edge cases JSON cannot round-trip."""
    body = draw(bodies)
    if json_safe:
        body = draw(st.dictionaries(st.text(max_size=6), st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                                                                     st.text(max_size=8)), max_size=4))
    return make_event(
        topic or draw(topics), body,
        source=draw(st.sampled_from(["s", "beamline-7", "a b"])),
        type=draw(st.sampled_from(["evfabric.event", "reading"])),
        delivery=draw(st.sampled_from(["best_effort", "reliable"])),
        ttl=draw(st.one_of(st.none(), st.floats(0.001, 1e6))),
        key=draw(st.one_of(st.none(), st.text(min_size=1, max_size=5))),
        seq=draw(st.integers(0, 2**40)),
        **draw(extras),
    )


def batches(topic: str, json_safe: bool = False, max_size: int = 6) -> Any:
    """Lists of events on one topic: some sharing their header (as a publisher's batch), some not."""
    varied = st.lists(events(topic, json_safe), min_size=1, max_size=max_size)
    shared = events(topic, json_safe).flatmap(
        lambda ev: st.lists(bodies if not json_safe else st.just({"x": 1}), min_size=1, max_size=max_size).map(
            lambda bs: [make_event(topic, b, source=ev.source, type=ev.type, delivery=ev.delivery, ttl=ev.ttl,
                                   key=ev.key, seq=ev.seq, **ev.extra) for b in bs]))
    return st.one_of(varied, shared)


_ids = __import__("itertools").count()


def unique(prefix: str) -> str:
    """A topic root no other test uses."""
    import time

    return f"{prefix}{next(_ids)}x{int(time.time() * 1000) % 100000}"


def evf_subject(topic: str, publisher: str = "_") -> str:
    """The subject evfabric subscribers listen on for ``topic`` (either subject layout, until
    every branch writes ``evf.<publisher>.<partition>.<topic>``)."""
    from evfabric.fabric.subjects import pattern_filter

    tokens = pattern_filter(topic)[0].split(".")
    return f"evf.{publisher}.0.{topic}" if tokens[:3] == ["evf", "*", "*"] else f"evf.0.{topic}"
