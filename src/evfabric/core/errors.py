"""Every error evfabric raises on purpose.

All of them derive from :class:`EvfabricError`. Errors about bad input also derive from
:class:`ValueError` (or :class:`PermissionError` for refusals) so that callers that do not know
evfabric still catch them naturally. Messages name what is wrong: the field, the topic, the
offending character.
"""

from __future__ import annotations


class EvfabricError(Exception):
    """Base class of all evfabric errors."""


# --- bad input -------------------------------------------------------------------------------


class InvalidTopic(EvfabricError, ValueError):
    """A topic name is not dot-separated segments of ``[A-Za-z0-9_-]+``."""


class InvalidPattern(EvfabricError, ValueError):
    """A subscription pattern is malformed (bad segment, bad wildcard use)."""


class InvalidEvent(EvfabricError, ValueError):
    """An event header or body is malformed; the message names the field."""


class InvalidFilter(EvfabricError, ValueError):
    """A CEL filter expression does not compile (or evaluates to a non-boolean)."""


class DecodeError(EvfabricError, ValueError):
    """Bytes received from the wire (or a file) are not a valid encoded event or batch."""


class ConfigError(EvfabricError, ValueError):
    """A configuration value or option is invalid; the message names the option."""


class ReservedTopic(EvfabricError, PermissionError):
    """User code tried to publish on the reserved ``cca`` topic group."""


# --- runtime conditions ----------------------------------------------------------------------


class QueueFull(EvfabricError):
    """A bounded queue is full and its overflow policy is ``raise``."""


class ServiceClosed(EvfabricError):
    """The service (or client) was closed; no more publishes or subscriptions are accepted."""


class BrokerUnavailable(EvfabricError, ConnectionError):
    """No broker answers at the given address, or the connection was lost for too long."""


class PublishTimeout(EvfabricError, TimeoutError):
    """A reliable publish was not acknowledged by the broker in time."""


class NotFound(EvfabricError, LookupError):
    """A named thing (topic, trigger, user, token...) does not exist."""


class AlreadyExists(EvfabricError):
    """A named thing (topic, trigger, user...) already exists."""


class AccessDenied(EvfabricError, PermissionError):
    """The caller's identity lacks the right for this operation."""


class DeadlockDetected(EvfabricError):
    """Coordinated tasks wait on each other and none can proceed; the message lists who waits on whom."""


class CausalityError(EvfabricError):
    """An event would reach a task in its past: a negative delay, or a send between processing
    elements shorter than the program's declared lookahead (conservative mode cannot then be safe)."""


class WorkerFailed(EvfabricError):
    """A processing element (thread, process or MPI rank) of a coordinated run raised or died;
    the message carries its rank and the original error."""


class PublishRejected(EvfabricError):
    """The broker refused to store a reliable publish for good (limits, size, no such topic...)."""


class ReceiveTimeout(EvfabricError, TimeoutError):
    """A task's explicit receive found no matching event in time (the pattern's middle ground
    between waiting forever and exact deadlock detection)."""


class QuotaExceeded(EvfabricError):
    """An identity's quota (streams, storage, consumers, connections) would be exceeded; the message carries the figures."""


class StorageFull(PublishRejected):
    """The broker cannot store a reliable publish: its store (disk, memory, account quota) is full;
    the message names the subject and the broker's error. Not retried: free space or raise limits."""


class RequestTimeout(EvfabricError, TimeoutError):
    """A request (``client.request``) got no reply in time; the message names the topic and the wait."""
