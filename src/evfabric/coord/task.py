"""Tasks: the unit of the Event-Based Coordination pattern.

A task is *initialise / (receive event, process, send events) / finalise* (the pattern's
Example 4.32). The runtime calls :meth:`Task.init` once, then :meth:`Task.handle` for every
event delivered to it, in the order the program's ordering mode allows, then
:meth:`Task.finish`. Sends are asynchronous: :meth:`Task.send` returns at once and the runtime
delivers the event later. An existing sequential component becomes a task through
:class:`Facade`, without changing its internals.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from evfabric.core.errors import ConfigError

if TYPE_CHECKING:
    from evfabric.coord.ordering import Message
    from evfabric.core.clocks import VectorClock

__all__ = ["Facade", "Task", "state_slots"]

# Attributes the runtime binds on a task; they are not the task's state and are never saved.
RUNTIME_ATTRS = frozenset({"id", "now", "send", "emit", "_ev", "_rec", "_vc", "receive", "current"})
_SLOTS: dict[type, tuple[str, ...]] = {}


def state_slots(cls: type) -> tuple[str, ...]:
    """The slots of ``cls`` (and its bases) that hold state: all but the runtime's.

    Private names are mangled as Python does (``__x`` in class ``C`` is ``_C__x``).
    """
    names = _SLOTS.get(cls)
    if names is None:
        skip: frozenset[str] = getattr(cls, "runtime_attrs", RUNTIME_ATTRS)
        found: list[str] = []
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name.startswith("__") and not name.endswith("__"):
                    name = f"_{klass.__name__.lstrip('_')}{name}"
                if name not in ("__dict__", "__weakref__") and name not in skip and name not in found:
                    found.append(name)
        names = _SLOTS[cls] = tuple(found)
    return names


class Task:
    """Base class of a coordinated task.

    The runtime sets ``id`` (an int, unique in the program) and ``now`` (the time stamp of the
    event being handled; 0 in untimed modes), and binds two functions before ``init``:

    * ``send(dst, kind, data=None, delay=0.0)``: send an event to task ``dst``, handled at
      ``now + delay`` (timed modes). Asynchronous: it returns at once. ``data`` must not be
      mutated afterwards (it may be shared with the receiver). A negative delay, or
      (conservative mode, between processing elements) a delay below the lookahead, raises
      :class:`~evfabric.core.errors.CausalityError`.
    * ``emit(record)``: an action on the outside world, recorded only once the current event
      is committed (at once in sequential and conservative modes, at fossil collection in
      optimistic mode).

    The runtime's attributes live in slots; the task's *state* is its other attributes: its
    ``__dict__`` and the ``__slots__`` its classes declare. The optimistic mode saves it before
    each event with :meth:`save` and puts it back with :meth:`restore`; the defaults deep-copy
    both (and refuse, naming the class, a state that cannot be copied); a task with a small
    state should override both for speed.

    Untimed runtimes also bind ``receive(src=None, kind=None, timeout=None)`` (wait for one
    matching event; :class:`~evfabric.core.errors.ReceiveTimeout` after ``timeout`` seconds)
    and ``current`` (the message being handled).
    """

    __slots__ = ("__dict__", "__weakref__", "_ev", "_rec", "emit", "id", "now", "send")
    runtime_attrs: frozenset[str] = RUNTIME_ATTRS

    if TYPE_CHECKING:  # bound by the runtimes, in __dict__ (untimed) or in slots (timed)
        id: int
        now: float
        send: Callable[..., None]
        emit: Callable[[Any], None]
        _ev: tuple[Any, ...]
        _rec: list[Any]
        _vc: VectorClock
        current: Message
        receive: Callable[..., Message]  # (src=None, kind=None, timeout=None) -> Message

    def __new__(cls, *args: Any, **kwargs: Any) -> Task:
        self = super().__new__(cls)
        self.id, self.now = -1, 0.0
        self.send = self.emit = _detached
        return self

    def init(self) -> None:
        """Called once before any event; may send the first events."""

    def handle(self, kind: str, data: Any) -> None:
        """Process one delivered event of type ``kind`` with payload ``data``.

        The timed engines look ``handle`` up once on the task's class (not on the instance).
        """

    def finish(self) -> dict[str, Any]:
        """Called once at the end (``now`` is the end time); returns this task's report."""
        return {}

    # -- state saving -----------------------------------------------------------------------

    def save(self) -> Any:
        """A snapshot of the task's state: a deep copy of its non-runtime attributes, those in
        ``__dict__`` and those in ``__slots__`` (unset slots stay unset).

        Raises :class:`~evfabric.core.errors.ConfigError` naming the class if the state cannot
        be copied (a lock, a file, a generator...): override :meth:`save` and :meth:`restore`.
        """
        skip = self.runtime_attrs
        state = {k: v for k, v in vars(self).items() if k not in skip}
        for name in state_slots(type(self)):
            try:
                state[name] = getattr(self, name)
            except AttributeError:
                continue  # an unset slot: restored as unset
        try:
            return copy.deepcopy(state)
        except Exception as exc:
            raise ConfigError(
                f"cannot save the state of {type(self).__qualname__} for rollback: {exc}; "
                "override save()/restore() (state()/set_state() on an LP)"
            ) from exc

    def restore(self, snapshot: Any) -> None:
        """Put back a snapshot taken by :meth:`save` (each snapshot is restored at most once)."""
        d = vars(self)
        for k in [k for k in d if k not in snapshot and k not in self.runtime_attrs]:
            del d[k]  # attributes created after the snapshot
        for name in state_slots(type(self)):
            if name in snapshot:
                setattr(self, name, snapshot[name])
            elif hasattr(self, name):
                delattr(self, name)
        slots = state_slots(type(self))
        d.update({k: v for k, v in snapshot.items() if k not in slots})

    def release(self, oldest: Any | None) -> None:
        """Optimistic mode, after a commit: no snapshot older than ``oldest`` (None: than the
        current state) will be restored any more; a task may free what only served those."""


def _detached(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("task is not attached to a runtime")


class Facade(Task):
    """Wrap an existing sequential component as a task (the pattern's Facade use).

    An event of kind ``k`` calls ``component.k(data)``; the return value is sent as an event
    to every ``(dst, kind)`` listed in ``routes[k]`` (after ``delay``). The component itself
    knows nothing about events.
    """

    def __init__(
        self,
        component: Any,
        routes: Mapping[str, Iterable[tuple[int, str]]] | None = None,
        delay: float = 0.0,
        report: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        self.component = component
        self.routes = {k: list(v) for k, v in (routes or {}).items()}
        self.delay = delay
        self._report = report

    def handle(self, kind: str, data: Any) -> None:
        result = getattr(self.component, kind)(data)
        for dst, out_kind in self.routes.get(kind, ()):
            self.send(dst, out_kind, result, self.delay)

    def finish(self) -> dict[str, Any]:
        return self._report(self.component) if self._report else {}
