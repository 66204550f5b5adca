"""Topic names and subscription patterns (CCA event specification, section 2.2).

A topic is dot-separated segments, each ``[A-Za-z0-9_-]+``: ``functions.signals.iteration``.
A pattern may use ``?`` for exactly one segment and ``*`` for one or more segments, anywhere:

* ``functions.signals.*`` matches ``functions.signals.iteration`` and
  ``functions.signals.currentStepDone.time``;
* ``functions.signals.?`` matches only the first;
* ``*.signals.*`` matches any topic with a ``signals`` segment that is neither first nor last.

The top-level group ``cca`` is reserved for events the framework emits.
"""

from __future__ import annotations

import re
from functools import lru_cache

from evfabric.core.errors import InvalidPattern, InvalidTopic, ReservedTopic

__all__ = [
    "RESERVED_GROUP",
    "Pattern",
    "check_publishable",
    "is_reserved",
    "reference_match",
    "validate_topic",
]

RESERVED_GROUP = "cca"
ONE = "?"
MANY = "*"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_TOPIC = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
MAX_TOPIC_LENGTH = 1024


def _describe_bad_segment(name: object, what: str, allow_wildcards: bool) -> str:
    if not isinstance(name, str):
        return f"{what} must be a str, got {type(name).__name__}"
    if not name:
        return f"{what} is empty"
    if len(name) > MAX_TOPIC_LENGTH:
        return f"{what} is {len(name)} characters long (at most {MAX_TOPIC_LENGTH})"
    for i, seg in enumerate(name.split(".")):
        if not seg:
            return f"{what} {name!r} has an empty segment at position {i} (leading, trailing or doubled '.')"
        if allow_wildcards and seg in (ONE, MANY):
            continue
        if not _SEGMENT.fullmatch(seg):
            bad = next(c for c in seg if not (c.isascii() and (c.isalnum() or c in "_-")))
            hint = " (wildcards '?' and '*' must be whole segments)" if bad in "?*" else ""
            return f"{what} {name!r}: segment {seg!r} has the character {bad!r}; allowed: A-Z a-z 0-9 _ -{hint}"
    return f"{what} {name!r} is malformed"


@lru_cache(maxsize=65536)
def _checked_topic(topic: str) -> str:
    if _TOPIC.fullmatch(topic) is None or len(topic) > MAX_TOPIC_LENGTH:
        raise InvalidTopic(_describe_bad_segment(topic, "topic", allow_wildcards=False))
    return topic


def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid topic name, else raise :class:`InvalidTopic` saying why."""
    if type(topic) is not str:
        raise InvalidTopic(_describe_bad_segment(topic, "topic", allow_wildcards=False))
    return _checked_topic(topic)


def is_reserved(topic: str) -> bool:
    """True when ``topic`` lies in the reserved ``cca`` group."""
    return topic == RESERVED_GROUP or topic.startswith(RESERVED_GROUP + ".")


def check_publishable(topic: str) -> str:
    """Validate ``topic`` and refuse the reserved group; return the topic."""
    validate_topic(topic)
    if is_reserved(topic):
        raise ReservedTopic(f"topic {topic!r} is in the reserved 'cca' group: only the framework publishes there")
    return topic


class Pattern:
    """A parsed subscription pattern. Immutable, hashable, compared by its text.

    ``Pattern("a.?.c").matches("a.b.c")`` is True. Construction validates the text and raises
    :class:`InvalidPattern` naming the bad segment.
    """

    __slots__ = ("_regex", "is_literal", "segments", "text")

    text: str
    segments: tuple[str, ...]
    is_literal: bool

    def __init__(self, text: str | Pattern) -> None:
        if isinstance(text, Pattern):
            text = text.text
        if type(text) is not str:
            raise InvalidPattern(_describe_bad_segment(text, "pattern", allow_wildcards=True))
        segments = tuple(text.split("."))
        if len(text) > MAX_TOPIC_LENGTH or not all(s in (ONE, MANY) or _SEGMENT.fullmatch(s) for s in segments):
            raise InvalidPattern(_describe_bad_segment(text, "pattern", allow_wildcards=True))
        self.text = text
        self.segments = segments
        self.is_literal = ONE not in segments and MANY not in segments
        # Compiled on the first matches(): the index never needs it, and compiling was 79 % of subscribe().
        self._regex: re.Pattern[str] | None = None

    def matches(self, topic: str) -> bool:
        """True when ``topic`` (a valid topic name) matches this pattern.

        A pattern that starts with a wildcard does not match reserved ``cca`` topics: framework
        events reach only those who ask for them by name (``cca.*``), as NATS keeps ``$SYS`` out of ``>``.
        """
        if self.is_literal:
            return topic == self.text
        if self.segments[0] in (ONE, MANY) and is_reserved(topic):
            return False
        regex = self._regex
        if regex is None:
            regex = self._regex = _compile_reference(self.segments)
        return regex.fullmatch(topic) is not None

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@lru_cache(maxsize=4096)
def _compile_reference(segments: tuple[str, ...]) -> re.Pattern[str]:
    seg = r"[A-Za-z0-9_-]+"
    parts = []
    for s in segments:
        if s == ONE:
            parts.append(seg)
        elif s == MANY:
            parts.append(rf"{seg}(?:\.{seg})*")
        else:
            parts.append(re.escape(s))
    return re.compile(r"\.".join(parts))


def reference_match(pattern: str, topic: str) -> bool:
    """The straightforward matcher every index must agree with (segment-wise recursion).

    Like :meth:`Pattern.matches`, a leading wildcard never matches the reserved ``cca`` group.
    """

    def rec(p: tuple[str, ...], t: tuple[str, ...]) -> bool:
        if not p:
            return not t
        head = p[0]
        if head == MANY:
            return any(rec(p[1:], t[k:]) for k in range(1, len(t) + 1))
        if not t:
            return False
        return (head == ONE or head == t[0]) and rec(p[1:], t[1:])

    p, t = tuple(pattern.split(".")), tuple(topic.split("."))
    if p[0] in (ONE, MANY) and t[0] == RESERVED_GROUP:
        return False
    return rec(p, t)
