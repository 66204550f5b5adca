"""Dead letters: events a reliable subscription failed for good, kept on ``cca.deadletter.<topic>``.

Each failed event becomes one reliable event on ``cca.deadletter.<its topic>`` whose body holds
the event, its position (``"<seq>:<index>"``), the error, the attempts made and the subscription; the consumer acknowledges the
original message once the letters are stored (and has it redelivered if storing failed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from evfabric.core.event import RELIABLE, Event, new_id, now_us
from evfabric.fabric.batching import Batcher, Ticket

if TYPE_CHECKING:
    from evfabric.fabric.subscription import FabricSubscription

__all__ = ["DEAD_LETTER_GROUP", "dead_letter"]

DEAD_LETTER_GROUP = "cca.deadletter"


def dead_letter(batcher: Batcher, source: str, subject_of: Callable[[str], str], wake: Callable[[], None],
                sub: FabricSubscription, failed: list[tuple[Event, BaseException]], attempt: int) -> Ticket:
    """Hand the letters for ``failed`` to ``batcher`` (reliable; never refused for lack of room);
    return the ticket of the last one. ``subject_of(topic)`` is the subject the client publishes
    a topic on (its identity's)."""
    ticket: Ticket | None = None
    for ev, exc in failed:
        body = {
            "event": msgspec.to_builtins(msgspec.structs.replace(ev, packed_position=0), builtin_types=(bytes,)),
            "position": str(ev.position) if ev.position else None,  # where it is stored: replay from there
            "error": f"{type(exc).__name__}: {exc}", "attempts": attempt,
            "subscription": sub.name, "pattern": sub.pattern.text, "group": sub.group,
        }
        topic = f"{DEAD_LETTER_GROUP}.{ev.topic}"
        now = now_us()
        letter = Event(id=new_id(now), topic=topic, source=source, time=now,
                       type="evfabric.deadletter", delivery="reliable", body=body)
        subject = subject_of(topic)
        # dead letters must not be lost: taken even when the batcher is full (the bound stays)
        ticket, woke = batcher.add(subject, RELIABLE, letter, force=True)
        if woke:
            wake()
    assert ticket is not None
    return ticket
