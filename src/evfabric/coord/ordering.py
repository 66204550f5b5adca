"""Delivery orders for untimed tasks: none, FIFO per sender, causal.

An ordering stamps each message when it is sent and says, at the receiver, whether it may be
delivered yet; a message that is not yet deliverable stays in the inbox while later ones are
taken (the pattern's look-ahead). All methods are called under the runtime's lock.

* ``none``: deliver in arrival order.
* ``fifo``: per (sender, receiver) sequence numbers; message n waits for n-1.
* ``causal``: if sending m1 happened before sending m2 and both go to one task, m1 is
  delivered first (Raynal-Schiper-Toueg). Each message carries the sender's matrix of known
  sends (row k: a vector clock of k's sends to each task); task j delivers m from i once it
  has delivered every message that m's matrix says was sent to j before m.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from evfabric.core.clocks import VectorClock
from evfabric.core.errors import ConfigError

__all__ = ["ORDERINGS", "Causal", "Fifo", "Message", "NoOrder", "make_ordering"]


@dataclass(slots=True)
class Message:
    """An untimed event in flight: sender, receiver, type, payload and the ordering's stamps.

    ``vc`` is the sender's vector clock at the send (happened-before, for tracing and tests).
    """

    src: int
    dst: int
    kind: str
    data: Any
    seq: int = 0
    sent: dict[tuple[int, int], int] | None = None
    vc: VectorClock = field(default_factory=VectorClock)


class NoOrder:
    """Deliver in arrival order."""

    name = "none"

    def stamp(self, msg: Message) -> None:
        """Fill the ordering's fields of an outgoing message."""

    def ready(self, msg: Message) -> bool:
        """May ``msg`` be delivered to ``msg.dst`` now?"""
        return True

    def delivered(self, msg: Message) -> None:
        """Record that ``msg`` was delivered."""

    def explain(self, msg: Message) -> str:
        """Why ``msg`` is not deliverable (for deadlock reports)."""
        return "deliverable"


class Fifo(NoOrder):
    """FIFO per sender: messages from one task to another are delivered in send order."""

    name = "fifo"

    def __init__(self) -> None:
        self._next_out: dict[tuple[int, int], int] = defaultdict(int)
        self._next_in: dict[tuple[int, int], int] = defaultdict(int)

    def stamp(self, msg: Message) -> None:
        pair = (msg.src, msg.dst)
        msg.seq = self._next_out[pair]
        self._next_out[pair] += 1

    def ready(self, msg: Message) -> bool:
        return msg.seq == self._next_in[(msg.src, msg.dst)]

    def delivered(self, msg: Message) -> None:
        self._next_in[(msg.src, msg.dst)] += 1

    def explain(self, msg: Message) -> str:
        return f"waits for message #{self._next_in[(msg.src, msg.dst)]} from task {msg.src} (this is #{msg.seq})"


class Causal(NoOrder):
    """Causal delivery for point-to-point messages (matrix clocks; implies FIFO)."""

    name = "causal"

    def __init__(self) -> None:
        self._sent: dict[int, dict[tuple[int, int], int]] = defaultdict(dict)  # task -> known sends
        self._deliv: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # task -> from -> n

    def stamp(self, msg: Message) -> None:
        known = self._sent[msg.src]
        msg.sent = dict(known)
        pair = (msg.src, msg.dst)
        known[pair] = known.get(pair, 0) + 1

    def _missing(self, msg: Message) -> list[tuple[int, int]]:
        deliv = self._deliv[msg.dst]
        assert msg.sent is not None
        return [(k, n - deliv[k]) for (k, j), n in msg.sent.items() if j == msg.dst and deliv[k] < n]

    def ready(self, msg: Message) -> bool:
        return not self._missing(msg)

    def delivered(self, msg: Message) -> None:
        self._deliv[msg.dst][msg.src] += 1
        known = self._sent[msg.dst]
        assert msg.sent is not None
        for pair, n in msg.sent.items():
            if n > known.get(pair, 0):
                known[pair] = n
        pair = (msg.src, msg.dst)
        known[pair] = max(known.get(pair, 0), msg.sent.get(pair, 0) + 1)

    def explain(self, msg: Message) -> str:
        need = ", ".join(f"{n} more from task {k}" for k, n in self._missing(msg))
        return f"waits for earlier messages it causally depends on: {need}"


ORDERINGS = {"none": NoOrder, "fifo": Fifo, "causal": Causal}


def make_ordering(name: str) -> NoOrder:
    """The ordering called ``name`` (none, fifo or causal)."""
    if name not in ORDERINGS:
        raise ConfigError(f"ordering must be one of {sorted(ORDERINGS)} for untimed tasks, not {name!r}")
    return ORDERINGS[name]()
