"""Reading an evfabric subject: who published, on which partition, which topic (docs/wire.md 1).

The layout is ``evf.<publisher>.<partition>.<topic>``. Until every publisher writes it, the
version-1 draft layout ``evf.<partition>.<topic>`` (no publisher token) is read as well: a
subject whose second token is a number and whose third is not is the draft layout. The topic
and publisher of a received event come from here, never from its payload.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from evfabric.core.errors import DecodeError, InvalidTopic
from evfabric.core.topics import MANY, ONE, Pattern, validate_topic

__all__ = ["ANONYMOUS", "PREFIX", "SubjectParts", "parse_subject", "pattern_tokens"]

PREFIX = "evf"
ANONYMOUS = "_"  # the publisher token on a server without access control


class SubjectParts(NamedTuple):
    """The tokens of an evfabric subject. ``publisher`` is None for ``_`` and the draft layout."""

    publisher: str | None
    partition: int
    topic: str


def _valid_identity(token: str) -> bool:
    return 0 < len(token) <= 64 and token[0].isascii() and token[0].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "_-") for c in token
    )


@lru_cache(maxsize=65536)
def parse_subject(subject: str) -> SubjectParts:
    """The publisher, partition and topic of an evfabric subject; DecodeError if it is not one."""
    parts = subject.split(".", 3)
    if len(parts) < 3 or parts[0] != PREFIX:
        raise DecodeError(f"subject {subject!r} is not an evfabric subject (evf.<publisher>.<partition>.<topic>)")
    if len(parts) == 4 and parts[2].isdigit() and parts[2].isascii():
        publisher, partition, topic = parts[1], parts[2], parts[3]
        if publisher != ANONYMOUS and not _valid_identity(publisher):
            raise DecodeError(f"subject {subject!r}: publisher token {publisher!r} is not an identity name")
    elif parts[1].isdigit() and parts[1].isascii():  # draft layout evf.<partition>.<topic>
        publisher, partition, topic = ANONYMOUS, parts[1], ".".join(parts[2:])
    else:
        raise DecodeError(f"subject {subject!r}: no partition number after the publisher token")
    try:
        validate_topic(topic)
    except InvalidTopic as exc:
        raise DecodeError(f"subject {subject!r}: {exc}") from None
    return SubjectParts(None if publisher == ANONYMOUS else publisher, int(partition), topic)


def pattern_tokens(pattern: str) -> tuple[str, bool]:
    """The NATS subject tokens for a CCA pattern (no prefix) and whether they match it exactly.

    ``?`` becomes ``*``; a trailing ``*`` becomes ``>``; a ``*`` anywhere else broadens to ``>``
    from there on (NATS has no "one or more" in the middle): then the receiver matches each
    event against the pattern itself. A raw topic's subscription listens on these tokens as they
    are; an evfabric one puts ``evf.<publisher>.<partition>.`` before them.
    """
    out: list[str] = []
    segments = Pattern(pattern).segments
    for i, seg in enumerate(segments):
        if seg == ONE:
            out.append("*")
        elif seg == MANY:
            out.append(">")
            return ".".join(out), i == len(segments) - 1
        else:
            out.append(seg)
    return ".".join(out), True
