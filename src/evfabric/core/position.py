"""Event positions (docs/wire.md section 8): where an event is stored in its topic's stream.

A JetStream stream sequence number counts *messages*, and a message carries a batch of events
(its ``Evf-Count`` header says how many). An event's position is its message's stream sequence
and its index in that message (from 0), written ``"<seq>:<index>"``: ``"12:3"`` is the fourth
event of message 12. A reliable subscription hands every event with its position
(``event.position``), and ``subscribe(..., start=position)`` replays from exactly that event.

:class:`Position` is the typed form; :func:`Position.parse` reads the text form (one-line
:class:`~evfabric.core.errors.ConfigError` naming what is wrong). On an event the position is
kept packed in one int (``packed_position``: ``seq << 32 | index``; setting one int per event
costs a tenth of building a string or tuple for it), and unpacked only when read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evfabric.core.errors import ConfigError

__all__ = ["INDEX_BITS", "Position", "position_of"]

INDEX_BITS = 32  # an index fits: a message holds at most max_payload bytes, far fewer events than 2**32
_INDEX_MASK = (1 << INDEX_BITS) - 1
_TEXT = re.compile(r"^([0-9]+):([0-9]+)$")


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """An event's place in its topic's stream: ``seq`` (the JetStream stream sequence of its
    message, from 1) and ``index`` (its index within that message, from 0). ``str()`` gives
    ``"<seq>:<index>"``."""

    seq: int
    index: int = 0

    def __str__(self) -> str:
        return f"{self.seq}:{self.index}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """``"<seq>:<index>"`` as a :class:`Position`; ConfigError naming the problem."""
        m = _TEXT.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ConfigError(f"a position is '<stream sequence>:<index>' (e.g. '12:3'), got {text!r}")
        return cls(int(m.group(1)), int(m.group(2))).checked()

    def checked(self) -> Position:
        """This position if valid (``seq >= 1``, ``0 <= index < 2**32``), else ConfigError."""
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise ConfigError(f"position {self.seq}:{self.index}: the stream sequence must be an int >= 1")
        if isinstance(self.index, bool) or not isinstance(self.index, int) or not 0 <= self.index <= _INDEX_MASK:
            raise ConfigError(f"position {self.seq}:{self.index}: the index must be an int from 0 to {_INDEX_MASK}")
        return self

    def packed(self) -> int:
        """The one-int form kept on events (``seq << 32 | index``)."""
        return self.seq << INDEX_BITS | self.index

    @classmethod
    def unpack(cls, packed: int) -> Position | None:
        """The position packed in ``packed``, or None for 0 (no position)."""
        if not packed:
            return None
        return cls(packed >> INDEX_BITS, packed & _INDEX_MASK)


def position_of(start: object) -> Position | None:
    """The position a ``start=`` names: a :class:`Position`, or text with a ``:`` (parsed, so a
    malformed one is a ConfigError); None for anything else."""
    if isinstance(start, Position):
        return start.checked()
    if isinstance(start, str) and ":" in start:
        return Position.parse(start)
    return None
