"""The records the access layer keeps: identities, groups, tokens, registered topics, grants.

Plain frozen dataclasses, with the rules that do not need the store (name syntax, what a grant
target may be). Times are POSIX seconds (float); ``None`` means "never" for an expiry.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from enum import Enum

from evfabric.core.errors import ConfigError, InvalidPattern, InvalidTopic
from evfabric.core.topics import MANY, ONE, Pattern, is_reserved, validate_topic

__all__ = [
    "NAMESPACE_ROOT",
    "Grant",
    "Group",
    "Identity",
    "IdentityKind",
    "IssuedToken",
    "Right",
    "TokenInfo",
    "TopicRecord",
    "literal_prefix",
    "namespace_of",
    "validate_name",
    "validate_target",
]

#: Topics under ``users.<name>`` belong to identity ``<name>`` without registration.
NAMESPACE_ROOT = "users"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class IdentityKind(str, Enum):
    """A person (``user``) or a program acting on its own (``service``: a trigger, a pipeline)."""

    USER = "user"
    SERVICE = "service"


class Right(str, Enum):
    """What a grant allows on a topic: sending events, or receiving them."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


def validate_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a valid identity or group name (1-64 of ``A-Za-z0-9_-``, not
    starting with ``_`` or ``-``: it becomes a topic segment); else raise :class:`ConfigError`."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{what}: {name!r} must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit")
    return name


def literal_prefix(target: str) -> str:
    """The segments of a topic or pattern before its first wildcard (``''`` if it starts with one)."""
    out: list[str] = []
    for seg in target.split("."):
        if seg in (ONE, MANY):
            break
        out.append(seg)
    return ".".join(out)


def validate_target(target: object) -> str:
    """Return ``target`` if it can be granted: a topic, or a CCA pattern the broker can enforce
    exactly (``?`` anywhere, ``*`` only as the last segment). Raise :class:`ConfigError` (a bad
    name, a ``*`` in the middle, the reserved ``cca`` group) naming the problem."""
    if not isinstance(target, str):
        raise ConfigError(f"target: expected a topic or pattern string, got {type(target).__name__}")
    try:
        segments = Pattern(target).segments
    except (InvalidPattern, InvalidTopic) as exc:
        raise ConfigError(f"target: {exc}") from None
    if MANY in segments[:-1]:
        raise ConfigError(
            f"target: {target!r} has '*' before its last segment; the broker can only enforce '*' at the end "
            "(use '?' for one segment, or grant several patterns)"
        )
    if is_reserved(target):
        raise ConfigError(f"target: {target!r} is in the reserved 'cca' group, which is not granted")
    return target


def namespace_of(topic_or_prefix: str) -> str | None:
    """The identity whose namespace holds ``topic_or_prefix`` (``users.alice.x`` -> ``alice``), or None."""
    parts = topic_or_prefix.split(".")
    if len(parts) >= 2 and parts[0] == NAMESPACE_ROOT:
        return parts[1]
    return None


@dataclass(frozen=True)
class Identity:
    """A user or service identity. ``owner``: the user who manages a service's tokens."""

    name: str
    kind: IdentityKind = IdentityKind.USER
    admin: bool = False
    owner: str | None = None
    description: str = ""
    created: float = field(default_factory=time.time)

    @property
    def namespace(self) -> str:
        """The topic subtree this identity owns: ``users.<name>``."""
        return f"{NAMESPACE_ROOT}.{self.name}"


@dataclass(frozen=True)
class Group:
    """A named set of identities that grants can name."""

    name: str
    members: tuple[str, ...] = ()
    description: str = ""
    created: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TokenInfo:
    """A token as stored: never the secret. ``revoked``/``expires`` are times or None."""

    id: str
    identity: str
    created: float
    expires: float | None = None
    revoked: float | None = None
    description: str = ""

    def valid(self, now: float | None = None) -> bool:
        """True while the token is neither revoked nor past its expiry."""
        now = time.time() if now is None else now
        return self.revoked is None and (self.expires is None or self.expires > now)

    @property
    def state(self) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked is not None:
            return "revoked"
        return "active" if self.valid() else "expired"


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: ``secret`` is the full token string, shown only this once."""

    secret: str
    info: TokenInfo


@dataclass(frozen=True)
class TopicRecord:
    """A registered topic (a topic root: it covers ``name`` and everything below it)."""

    name: str
    owner: str
    description: str = ""
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        validate_topic(self.name)


@dataclass(frozen=True)
class Grant:
    """``grantee`` (a user, or a group when ``to_group``) may ``rights`` on ``target``.

    A topic target covers that topic and every topic below it; a pattern covers what it matches.
    """

    target: str
    grantee: str
    to_group: bool = False
    rights: frozenset[Right] = frozenset()
    granted_by: str = ""
    created: float = field(default_factory=time.time)
