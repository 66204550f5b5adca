"""Request and response bodies of the access REST API (pydantic models, hence its OpenAPI schema).

Names, topics and targets are checked here, at the edge, with the same syntax as the store, so
that bad input gets a 422 naming the field before anything else happens.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from evfabric.access.model import Grant, Group, Identity, IdentityKind, Right, TokenInfo, TopicRecord

__all__ = [
    "NAME_PATTERN",
    "TARGET_PATTERN",
    "TOPIC_PATTERN",
    "AccessRow",
    "AdminIn",
    "CheckOut",
    "ErrorOut",
    "GrantIn",
    "GrantOut",
    "GroupIn",
    "GroupOut",
    "IdentityIn",
    "IdentityOut",
    "IssuedTokenOut",
    "RevokeIn",
    "TokenIn",
    "TokenOut",
    "TopicAccessOut",
    "TopicIn",
    "TopicOut",
    "ValidationErrorOut",
    "WhoAmIOut",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
TOPIC_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# '?' anywhere, '*' only as the last segment: what the broker can enforce exactly
TARGET_PATTERN = r"^(\*|([A-Za-z0-9_-]+|\?)(\.([A-Za-z0-9_-]+|\?))*(\.\*)?)$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64, examples=["alice"])]
TopicName = Annotated[str, Field(pattern=TOPIC_PATTERN, max_length=1024, examples=["users.alice.runs"])]
Target = Annotated[str, Field(pattern=TARGET_PATTERN, max_length=1024, examples=["users.alice.runs", "jobs.?"])]
Description = Annotated[str, Field(max_length=1000)]
Seconds = Annotated[float, Field(strict=True, gt=0, le=10 * 365 * 86400)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """An error: what went wrong, in words."""

    detail: str


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """Bad input: one item per problem, ``loc`` naming the field (FastAPI's own shape)."""

    detail: list[ValidationItem]


class IdentityIn(_In):
    """A new identity. Non-administrators may only create services (owned by themselves)."""

    name: Name
    kind: IdentityKind = IdentityKind.USER
    admin: StrictBool = False
    owner: Name | None = None
    description: Description = ""


class IdentityOut(BaseModel):
    name: str
    kind: IdentityKind
    admin: bool
    owner: str | None
    namespace: str
    description: str
    created: float

    @classmethod
    def of(cls, i: Identity) -> IdentityOut:
        return cls(name=i.name, kind=i.kind, admin=i.admin, owner=i.owner, namespace=i.namespace,
                   description=i.description, created=i.created)


class AdminIn(_In):
    admin: StrictBool


class WhoAmIOut(BaseModel):
    identity: IdentityOut
    token_id: str
    groups: list[str]


class GroupIn(_In):
    name: Name
    description: Description = ""
    members: list[Name] = Field(default_factory=list, max_length=1000)


class GroupOut(BaseModel):
    name: str
    members: list[str]
    description: str
    created: float

    @classmethod
    def of(cls, g: Group) -> GroupOut:
        return cls(name=g.name, members=list(g.members), description=g.description, created=g.created)


class TokenIn(_In):
    """A token request: for ``identity`` (default: the caller), valid ``expires_in`` seconds (default: no expiry)."""

    identity: Name | None = None
    expires_in: Seconds | None = None
    description: Description = ""


class TokenOut(BaseModel):
    id: str
    identity: str
    created: float
    expires: float | None
    revoked: float | None
    state: str
    description: str

    @classmethod
    def of(cls, t: TokenInfo) -> TokenOut:
        return cls(id=t.id, identity=t.identity, created=t.created, expires=t.expires, revoked=t.revoked,
                   state=t.state, description=t.description)


class IssuedTokenOut(BaseModel):
    """A new token: ``token`` is the secret, shown only in this answer."""

    token: str
    info: TokenOut


class TopicIn(_In):
    name: TopicName
    owner: Name | None = None
    description: Description = ""


class TopicOut(BaseModel):
    name: str
    owner: str
    description: str
    created: float

    @classmethod
    def of(cls, t: TopicRecord) -> TopicOut:
        return cls(name=t.name, owner=t.owner, description=t.description, created=t.created)


class AccessRow(BaseModel):
    """One holder of rights on (part of) a topic: its owner, or a grant overlapping it."""

    grantee: str
    group: bool
    target: str
    rights: list[str]


class TopicAccessOut(BaseModel):
    topic: TopicOut
    access: list[AccessRow]


class GrantIn(_In):
    """Give ``grantee`` (a user, or a group with ``group: true``) rights on a topic or pattern."""

    target: Target
    grantee: Name
    group: StrictBool = False
    rights: list[Right] = Field(min_length=1, max_length=2)


class RevokeIn(_In):
    """Take rights back (all of them when ``rights`` is omitted)."""

    target: Target
    grantee: Name
    group: StrictBool = False
    rights: list[Right] | None = Field(default=None, min_length=1, max_length=2)


class GrantOut(BaseModel):
    target: str
    grantee: str
    group: bool
    rights: list[Right]
    granted_by: str
    created: float

    @classmethod
    def of(cls, g: Grant) -> GrantOut:
        return cls(target=g.target, grantee=g.grantee, group=g.to_group, rights=sorted(g.rights, key=lambda r: r.value),
                   granted_by=g.granted_by, created=g.created)


class CheckOut(BaseModel):
    identity: str
    right: Right
    topic: str
    allowed: bool
