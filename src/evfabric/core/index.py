"""The pattern index: which subscriptions match a published topic, without scanning them all.

Patterns are stored in a segment trie. Matching a topic walks the trie as a small
non-deterministic automaton: a ``?`` edge consumes exactly one segment, a ``*`` edge consumes one
segment and leads to a node that may go on consuming (one or more). The work per publish depends
on the topic's length and on how many trie branches fit it, not on the number of subscriptions.
Results are cached per topic (the hot path is then one dict lookup) and the cache is dropped
whenever the set of patterns changes. The cache is bounded (``cache_size`` topics): beyond it the
oldest entry makes room for the new one, so with more topics than that the topics still cached
stay hits (the cache degrades; it is never cleared wholesale).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from evfabric.core.topics import MANY, ONE, RESERVED_GROUP, Pattern

__all__ = ["PatternIndex"]

T = TypeVar("T")

log = logging.getLogger("evfabric.index")

CACHE_SIZE = 100_000
#: what a node holds until it holds something: one shared empty mapping, never written, so that a
#: subscription allocates only the dicts it fills (the garbage collector's work grows with every
#: allocation: half of ``subscribe()``'s time went to collections with 10,000 patterns in place)
_NONE: dict[Any, Any] = {}


class _Node:
    __slots__ = ("entries", "literal", "loops", "many", "one")

    def __init__(self, loops: bool = False) -> None:
        self.literal: dict[str, _Node] = _NONE
        self.one: _Node | None = None
        self.many: _Node | None = None
        self.loops = loops  # reached through '*': may absorb further segments
        self.entries: dict[int, object] = _NONE  # insertion number -> value

    def empty(self) -> bool:
        return not (self.literal or self.one or self.many or self.entries)


class PatternIndex(Generic[T]):
    """A multimap from :class:`Pattern` to values, queried by topic.

    ``add`` returns a handle to pass to ``remove``. ``match(topic)`` returns the values whose
    pattern matches, in the order they were added, as a tuple (cached until the next change).
    """

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._root = _Node()
        self._counter = 0
        self._size = 0
        self.cache_size = cache_size
        self.cache: OrderedDict[str, tuple[T, ...]] = OrderedDict()
        """topic -> match result; read it, never write it (the index keeps it right)."""

    def __len__(self) -> int:
        return self._size

    def add(self, pattern: Pattern | str, value: T) -> int:
        """Index ``value`` under ``pattern``; return a handle for :meth:`remove`."""
        pattern = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        node = self._root
        for seg in pattern.segments:
            if seg == ONE:
                node.one = node.one or _Node()
                node = node.one
            elif seg == MANY:
                node.many = node.many or _Node(loops=True)
                node = node.many
            else:
                nxt = node.literal.get(seg)
                if nxt is None:
                    if node.literal is _NONE:
                        node.literal = {}
                    nxt = node.literal[seg] = _Node()
                node = nxt
        self._counter += 1
        if node.entries is _NONE:
            node.entries = {}
        node.entries[self._counter] = value
        self._size += 1
        self.cache.clear()
        return self._counter

    def remove(self, pattern: Pattern | str, handle: int) -> bool:
        """Remove the value added under ``pattern`` with ``handle``; False if it was not there."""
        pattern = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        path: list[tuple[_Node, str]] = []
        node: _Node | None = self._root
        for seg in pattern.segments:
            assert node is not None
            path.append((node, seg))
            node = node.one if seg == ONE else node.many if seg == MANY else node.literal.get(seg)
            if node is None:
                return False
        if node is None or node.entries.pop(handle, None) is None:
            return False
        self._size -= 1
        self.cache.clear()
        # prune branches that became empty so the trie does not grow without bound
        for parent, seg in reversed(path):
            if not node.empty():
                break
            if seg == ONE:
                parent.one = None
            elif seg == MANY:
                parent.many = None
            else:
                del parent.literal[seg]
            node = parent
        return True

    def watches_reserved(self) -> bool:
        """True when some pattern starts with the reserved group's name (``cca.*``...): only those
        match framework events (leading wildcards do not reach them)."""
        return RESERVED_GROUP in self._root.literal

    def match(self, topic: str) -> tuple[T, ...]:
        """Values whose pattern matches ``topic`` (a valid topic name), in insertion order."""
        cache = self.cache
        hit = cache.get(topic)
        if hit is not None:
            return hit
        result = self._walk(topic)
        if len(cache) >= self.cache_size:
            try:  # evict the oldest entry, O(1) (a plain dict's first key costs a scan past deleted slots)
                cache.popitem(last=False)
            except KeyError:  # another thread emptied it meanwhile
                log.debug("match cache emptied while evicting")
        cache[topic] = result
        return result

    def _walk(self, topic: str) -> tuple[T, ...]:
        segments = topic.split(".")
        root = self._root
        if segments[0] == RESERVED_GROUP:  # leading wildcards do not reach the reserved group
            first = root.literal.get(RESERVED_GROUP)
            if first is None:
                return ()
            states, segments = [first], segments[1:]
        else:
            states = [root]
        for seg in segments:
            nxt: list[_Node] = []
            for node in states:
                child = node.literal.get(seg)
                if child is not None:
                    nxt.append(child)
                if node.one is not None:
                    nxt.append(node.one)
                if node.many is not None:
                    nxt.append(node.many)
                if node.loops:
                    nxt.append(node)
            if not nxt:
                return ()
            # several paths may reach one node; keep each node once
            states = list({id(n): n for n in nxt}.values()) if len(nxt) > 1 else nxt
        found: dict[int, object] = {}
        for node in states:
            found.update(node.entries)
        if not found:
            return ()
        return tuple(found[k] for k in sorted(found))  # type: ignore[misc]

    def values(self) -> list[T]:
        """Every indexed value, in insertion order."""
        out: dict[int, object] = {}
        stack = [self._root]
        while stack:
            node = stack.pop()
            out.update(node.entries)
            stack.extend(node.literal.values())
            stack.extend(n for n in (node.one, node.many) if n is not None)
        return [out[k] for k in sorted(out)]  # type: ignore[misc]
