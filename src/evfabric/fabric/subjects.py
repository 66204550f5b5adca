"""How topics and CCA patterns map to NATS subjects, and topics to JetStream stream names.

Every event travels on the subject ``evf.<publisher>.<partition>.<topic>`` (docs/wire.md
section 1): the fixed prefix keeps evfabric traffic apart from anything else on the broker; the
publisher token is the authenticated identity of the sender, bound by the broker (``_`` on a
server without access control); the partition token (``0`` for topics that are not partitioned)
lets a consumer take one partition of a topic with one subject filter.

A CCA pattern maps to the broadest NATS filter that contains it: ``?`` becomes ``*`` (both are one
segment), a trailing ``*`` becomes ``>`` (both are one or more segments), and a ``*`` anywhere
else broadens to ``>`` from there on, since NATS has no "one or more" wildcard in the middle.
:func:`pattern_filter` says whether the filter is exact; when it is not, the client matches
each received event against the pattern itself.
"""

from __future__ import annotations

import hashlib
import zlib
from functools import lru_cache

from evfabric.core.topics import MANY, ONE, Pattern

__all__ = [
    "ANONYMOUS",
    "PREFIX",
    "intersect",
    "parse_subject",
    "partition_of",
    "pattern_filter",
    "pattern_reaches",
    "raw_stream_name",
    "raw_subjects",
    "stream_name",
    "stream_subjects",
    "topic_of_subject",
    "topic_subject",
]

PREFIX = "evf"
#: The publisher token on a server without access control (nobody is authenticated).
ANONYMOUS = "_"


@lru_cache(maxsize=65536)
def topic_subject(topic: str, partition: int = 0, publisher: str = ANONYMOUS) -> str:
    """The subject an event of ``topic`` (a valid topic name) from ``publisher`` travels on."""
    return f"{PREFIX}.{publisher}.{partition}.{topic}"


def parse_subject(subject: str) -> tuple[str, int, str] | None:
    """``(publisher, partition, topic)`` of an evfabric subject, or None if ``subject`` is not one.

    Only the shape is checked (prefix, a non-empty publisher, a decimal partition, a non-empty
    topic part); the topic's syntax is the caller's to validate.
    """
    parts = subject.split(".", 3)
    if len(parts) != 4 or parts[0] != PREFIX or not parts[1] or not parts[2].isdigit() or not parts[3]:
        return None
    return parts[1], int(parts[2]), parts[3]


def topic_of_subject(subject: str) -> str | None:
    """The topic part of an evfabric subject, or None if ``subject`` is not one."""
    parsed = parse_subject(subject)
    return None if parsed is None else parsed[2]


def stream_subjects(root: str) -> list[str]:
    """The subjects a topic root's stream stores: every publisher and partition, the root and below."""
    return [f"{PREFIX}.*.*.{root}", f"{PREFIX}.*.*.{root}.>"]


@lru_cache(maxsize=4096)
def _mapped(pattern: str) -> tuple[str, bool]:
    out: list[str] = []
    exact = True
    segments = Pattern(pattern).segments
    for i, seg in enumerate(segments):
        if seg == ONE:
            out.append("*")
        elif seg == MANY:
            out.append(">")
            exact = i == len(segments) - 1
            break
        else:
            out.append(seg)
    return ".".join(out), exact


def pattern_filter(pattern: str | Pattern, partition: int | None = None,
                   publisher: str | None = None) -> tuple[str, bool]:
    """The NATS subject filter for ``pattern`` and whether it is exact.

    ``partition=None`` covers every partition, ``publisher=None`` every publisher; a value
    restricts the filter to that partition (publisher).
    """
    mapped, exact = _mapped(str(pattern))
    part = "*" if partition is None else str(partition)
    pub = "*" if publisher is None else publisher
    return f"{PREFIX}.{pub}.{part}.{mapped}", exact


def intersect(a: str, b: str) -> str | None:
    """The NATS filter for the subjects both filters ``a`` and ``b`` match, or None if disjoint.

    Exact for NATS wildcards (``*`` one token, ``>`` one or more trailing tokens).
    """
    ta, tb = a.split("."), b.split(".")
    out: list[str] = []
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x is None or y is None:
            return None  # one ran out of tokens without a '>' to absorb the rest
        if x == ">":
            return ".".join(out + tb[i:])
        if y == ">":
            return ".".join(out + ta[i:])
        if x == "*":
            out.append(y)
        elif y == "*" or x == y:
            out.append(x)
        else:
            return None
    return ".".join(out)


def pattern_reaches(pattern: str | Pattern, topic: str) -> bool:
    """True when some topic equal to ``topic`` or below it (``topic.x...``) matches ``pattern``.

    Used to find the streams (one per topic root) that a reliable subscription must consume.
    """
    p = Pattern(pattern).segments
    t = tuple(topic.split("."))

    def rec(i: int, j: int) -> bool:
        if j == len(t):
            return True  # the topic is consumed; any rest of the pattern fits some sub-topic
        if i == len(p):
            return False
        if p[i] == MANY:
            return any(rec(i + 1, k) for k in range(j + 1, len(t) + 1)) or rec(i, len(t))
        return (p[i] == ONE or p[i] == t[j]) and rec(i + 1, j + 1)

    return rec(0, 0)


def stream_name(topic: str) -> str:
    """A JetStream stream name for ``topic``: readable, and distinct for distinct topics.

    Stream names cannot hold dots; a short hash of the topic keeps ``a.b`` and ``a_b`` apart.
    """
    digest = hashlib.sha1(topic.encode()).hexdigest()[:8]
    readable = topic.replace(".", "_")[:200]
    return f"EVF_{readable}_{digest}"


def raw_stream_name(topic: str) -> str:
    """The JetStream stream of raw topic ``topic`` (its own: ``EVF_RAW_<topic>_<hash>``)."""
    return "EVF_RAW_" + stream_name(topic)[4:]


def raw_subjects(topic: str) -> list[str]:
    """The subjects a raw topic stores: its foreign subjects, the topic's name and below
    (docs/wire.md 5), as an MQTT device's ``lab/probe/temp`` arrives as ``lab.probe.temp``."""
    return [topic, f"{topic}.>"]


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key``: stable across processes and runs (CRC-32, not ``hash``)."""
    if partitions <= 1:
        return 0
    return zlib.crc32(key.encode()) % partitions
