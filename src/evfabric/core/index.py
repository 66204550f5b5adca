"""The pattern index: which subscriptions match a published topic, without scanning them all.

Patterns are stored in a segment trie. Matching a topic walks the trie as a small
non-deterministic automaton: a ``?`` edge consumes exactly one segment, a ``*`` edge consumes one
segment and leads to a node that may go on consuming (one or more). The work per publish depends
on the topic's length and on how many trie branches fit it, not on the number of subscriptions.
Results are cached per topic (the hot path is then one dict lookup) and the cache is dropped
whenever the set of patterns changes.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from evfabric.core.topics import MANY, ONE, RESERVED_GROUP, Pattern

__all__ = ["PatternIndex"]

T = TypeVar("T")

_CACHE_LIMIT = 100_000


class _Node:
    __slots__ = ("literal", "one", "many", "loops", "entries")

    def __init__(self, loops: bool = False) -> None:
        self.literal: dict[str, _Node] = {}
        self.one: _Node | None = None
        self.many: _Node | None = None
        self.loops = loops  # reached through '*': may absorb further segments
        self.entries: dict[int, object] = {}  # insertion number -> value

    def empty(self) -> bool:
        return not (self.literal or self.one or self.many or self.entries)


class PatternIndex(Generic[T]):
    """A multimap from :class:`Pattern` to values, queried by topic.

    ``add`` returns a handle to pass to ``remove``. ``match(topic)`` returns the values whose
    pattern matches, in the order they were added, as a tuple (cached until the next change).
    """

    def __init__(self) -> None:
        self._root = _Node()
        self._counter = 0
        self._size = 0
        self._cache: dict[str, tuple[T, ...]] = {}

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
                    nxt = node.literal[seg] = _Node()
                node = nxt
        self._counter += 1
        node.entries[self._counter] = value
        self._size += 1
        self._cache.clear()
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
        self._cache.clear()
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

    def match(self, topic: str) -> tuple[T, ...]:
        """Values whose pattern matches ``topic`` (a valid topic name), in insertion order."""
        hit = self._cache.get(topic)
        if hit is not None:
            return hit
        result = self._walk(topic)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = result
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
