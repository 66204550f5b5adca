"""The access REST API: a FastAPI ``router`` under ``/access`` (identities, groups, tokens,
topics, grants), authenticated with ``Authorization: Bearer <token>``.

The web service (:mod:`evfabric.web.app`) includes it; any FastAPI app can::

    app.include_router(evfabric.access.api.router)
    evfabric.access.api.use_access(app, AccessStore.in_dir(data_dir))

Errors: 400 for a body that is not JSON, 401 without a valid token, 403 when the caller lacks the right, 404 for an unknown
name, 409 for a duplicate or an overlapping topic, 422 for bad input (FastAPI's usual body,
``detail[].loc`` naming the field), 503 when no store is configured. What each identity may do
is in :mod:`evfabric.access.manager`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from evfabric.access.manager import AccessManager
from evfabric.access.model import Identity, Right, TokenInfo
from evfabric.access.schemas import (
    NAME_PATTERN,
    TARGET_PATTERN,
    TOPIC_PATTERN,
    AccessRow,
    AdminIn,
    CheckOut,
    ErrorOut,
    GrantIn,
    GrantOut,
    GroupIn,
    GroupOut,
    IdentityIn,
    IdentityOut,
    IssuedTokenOut,
    RevokeIn,
    TokenIn,
    TokenOut,
    TopicAccessOut,
    TopicIn,
    TopicOut,
    ValidationErrorOut,
    WhoAmIOut,
)
from evfabric.access.store import AccessStore
from evfabric.core.errors import AccessDenied, AlreadyExists, EvfabricError, NotFound

__all__ = ["get_manager", "router", "use_access"]

_STATE_KEY = "evfabric_access"

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not JSON"},
    401: {"model": ErrorOut, "description": "no valid bearer token"},
    403: {"model": ErrorOut, "description": "the caller lacks the right"},
    404: {"model": ErrorOut, "description": "no such identity, group, token, topic or grant"},
    409: {"model": ErrorOut, "description": "already exists, or overlaps a registered topic"},
    422: {"model": ValidationErrorOut, "description": "bad input; `detail[].loc` names the field"},
}



def _query_names(dependant: Any) -> set[str]:
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not declare (a misspelt ``?identiy=`` would
    otherwise be ignored silently)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params.keys()) - known)
    if unknown:
        raise HTTPException(422, [{"loc": ["query", name], "msg": f"unknown query parameter {name!r}; known: "
                                   f"{', '.join(sorted(known)) or 'none'}", "type": "extra_forbidden"}
                                  for name in unknown])


router = APIRouter(prefix="/access", tags=["access"], responses=_ERRORS, dependencies=[Depends(_known_query_only)])
_bearer = HTTPBearer(auto_error=False, description="an evfabric token: `Authorization: Bearer evf_...`")

NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
TopicPath = Annotated[str, Path(pattern=TOPIC_PATTERN, max_length=1024)]
TokenIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


def use_access(app: FastAPI, store: AccessStore | AccessManager) -> AccessManager:
    """Make ``app``'s access routes work on ``store``; returns the manager."""
    manager = store if isinstance(store, AccessManager) else AccessManager(store)
    setattr(app.state, _STATE_KEY, manager)
    return manager


def get_manager(request: Request) -> AccessManager:
    """The access manager of the app serving ``request``; 503 if none is configured."""
    manager = getattr(request.app.state, _STATE_KEY, None)
    if manager is None:
        raise HTTPException(503, "access control is not configured: call evfabric.access.api.use_access(app, store)")
    return manager


Manager = Annotated[AccessManager, Depends(get_manager)]


def _caller(manager: Manager,
            creds: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> tuple[Identity, TokenInfo]:
    if creds is None:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer evf_...)",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return manager.store.authenticate(creds.credentials)
    except (AccessDenied, NotFound) as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


Caller = Annotated[tuple[Identity, TokenInfo], Depends(_caller)]


@contextmanager
def _errors(where: str = "body") -> Iterator[None]:
    """Turn evfabric errors into HTTP answers (422 in FastAPI's shape, naming the field)."""
    try:
        yield
    except AccessDenied as exc:
        raise HTTPException(403, str(exc)) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except AlreadyExists as exc:
        raise HTTPException(409, str(exc)) from None
    except (EvfabricError, ValueError) as exc:
        msg = str(exc)
        field, _, _ = msg.partition(":")
        loc = [where, field] if field and " " not in field else [where]
        raise HTTPException(422, [{"loc": loc, "msg": msg, "type": "value_error"}]) from None


# --- who am I --------------------------------------------------------------------------------


@router.get("/whoami", summary="The caller's identity, token and groups")
def whoami(manager: Manager, caller: Caller) -> WhoAmIOut:
    ident, token = caller
    groups = sorted(manager.store.snapshot().groups_of(ident.name))
    return WhoAmIOut(identity=IdentityOut.of(ident), token_id=token.id, groups=groups)


@router.get("/check", summary="Whether an identity may publish or subscribe on a topic")
def check(manager: Manager, caller: Caller, right: Right,
          topic: Annotated[str, Query(pattern=TOPIC_PATTERN, max_length=1024)],
          identity: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=64)] = None) -> CheckOut:
    with _errors("query"):
        allowed = manager.check(caller[0], right, topic, identity)
    return CheckOut(identity=identity or caller[0].name, right=right, topic=topic, allowed=allowed)


# --- identities ------------------------------------------------------------------------------


@router.post("/identities", status_code=201, summary="Create a user or service identity")
def create_identity(body: IdentityIn, manager: Manager, caller: Caller) -> IdentityOut:
    with _errors():
        ident = manager.create_identity(caller[0], body.name, body.kind, admin=body.admin, owner=body.owner,
                                        description=body.description)
    return IdentityOut.of(ident)


@router.get("/identities", summary="Identities the caller may manage (all, for administrators)")
def list_identities(manager: Manager, caller: Caller) -> list[IdentityOut]:
    return [IdentityOut.of(i) for i in manager.list_identities(caller[0])]


@router.get("/identities/{name}", summary="One identity")
def get_identity(name: NamePath, manager: Manager, caller: Caller) -> IdentityOut:
    with _errors("path"):
        return IdentityOut.of(manager.get_identity(caller[0], name))


@router.delete("/identities/{name}", status_code=204, summary="Delete an identity, its tokens and its topics")
def delete_identity(name: NamePath, manager: Manager, caller: Caller) -> Response:
    with _errors("path"):
        manager.delete_identity(caller[0], name)
    return Response(status_code=204)


@router.put("/identities/{name}/admin", summary="Make an identity an administrator or not (administrators)")
def set_admin(name: NamePath, body: AdminIn, manager: Manager, caller: Caller) -> IdentityOut:
    with _errors("path"):
        return IdentityOut.of(manager.set_admin(caller[0], name, body.admin))


# --- groups ----------------------------------------------------------------------------------


@router.post("/groups", status_code=201, summary="Create a group (administrators)")
def create_group(body: GroupIn, manager: Manager, caller: Caller) -> GroupOut:
    with _errors():
        return GroupOut.of(manager.create_group(caller[0], body.name, body.description, body.members))


@router.get("/groups", summary="Groups (all for administrators, one's own otherwise)")
def list_groups(manager: Manager, caller: Caller) -> list[GroupOut]:
    return [GroupOut.of(g) for g in manager.list_groups(caller[0])]


@router.get("/groups/{name}", summary="One group and its members")
def get_group(name: NamePath, manager: Manager, caller: Caller) -> GroupOut:
    with _errors("path"):
        return GroupOut.of(manager.get_group(caller[0], name))


@router.delete("/groups/{name}", status_code=204, summary="Delete a group and its grants (administrators)")
def delete_group(name: NamePath, manager: Manager, caller: Caller) -> Response:
    with _errors("path"):
        manager.delete_group(caller[0], name)
    return Response(status_code=204)


@router.put("/groups/{name}/members/{member}", summary="Add a member (administrators)")
def add_member(name: NamePath, member: NamePath, manager: Manager, caller: Caller) -> GroupOut:
    with _errors("path"):
        return GroupOut.of(manager.add_member(caller[0], name, member))


@router.delete("/groups/{name}/members/{member}", summary="Remove a member (administrators)")
def remove_member(name: NamePath, member: NamePath, manager: Manager, caller: Caller) -> GroupOut:
    with _errors("path"):
        return GroupOut.of(manager.remove_member(caller[0], name, member))


# --- tokens ----------------------------------------------------------------------------------


@router.post("/tokens", status_code=201, summary="Issue a token (the secret is in this answer only)")
def issue_token(body: TokenIn, manager: Manager, caller: Caller) -> IssuedTokenOut:
    with _errors():
        issued = manager.issue_token(caller[0], body.identity, expires_in=body.expires_in,
                                     description=body.description)
    return IssuedTokenOut(token=issued.secret, info=TokenOut.of(issued.info))


@router.get("/tokens", summary="Tokens the caller may manage, or those of one identity")
def list_tokens(manager: Manager, caller: Caller,
                identity: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=64)] = None) -> list[TokenOut]:
    with _errors("query"):
        return [TokenOut.of(t) for t in manager.list_tokens(caller[0], identity)]


@router.get("/tokens/{token_id}", summary="One token (never its secret)")
def get_token(token_id: TokenIdPath, manager: Manager, caller: Caller) -> TokenOut:
    with _errors("path"):
        return TokenOut.of(manager.get_token(caller[0], token_id))


@router.delete("/tokens/{token_id}", summary="Revoke a token: its connections are dropped within seconds")
def revoke_token(token_id: TokenIdPath, manager: Manager, caller: Caller) -> TokenOut:
    with _errors("path"):
        return TokenOut.of(manager.revoke_token(caller[0], token_id))


@router.post("/tokens/{token_id}/expire", summary="Make a token expire now")
def expire_token(token_id: TokenIdPath, manager: Manager, caller: Caller) -> TokenOut:
    with _errors("path"):
        return TokenOut.of(manager.expire_token(caller[0], token_id))


# --- topics ----------------------------------------------------------------------------------


@router.post("/topics", status_code=201, summary="Register a topic: the caller (or `owner`) owns it and its subtopics")
def register_topic(body: TopicIn, manager: Manager, caller: Caller) -> TopicOut:
    with _errors():
        return TopicOut.of(manager.register_topic(caller[0], body.name, owner=body.owner,
                                                  description=body.description))


@router.get("/topics", summary="Registered topics the caller owns or holds rights on (all, for administrators)")
def list_topics(manager: Manager, caller: Caller) -> list[TopicOut]:
    return [TopicOut.of(t) for t in manager.list_topics(caller[0])]


@router.get("/topics/{name}", summary="A registered topic and who has access to it (owner, administrators)")
def get_topic(name: TopicPath, manager: Manager, caller: Caller) -> TopicAccessOut:
    with _errors("path"):
        rec, rows = manager.get_topic(caller[0], name)
    return TopicAccessOut(topic=TopicOut.of(rec), access=[AccessRow(**r) for r in rows])


@router.delete("/topics/{name}", status_code=204, summary="Unregister a topic and the grants under it")
def unregister_topic(name: TopicPath, manager: Manager, caller: Caller) -> Response:
    with _errors("path"):
        manager.unregister_topic(caller[0], name)
    return Response(status_code=204)


# --- grants ----------------------------------------------------------------------------------


class RevokeOut(BaseModel):
    """What is left of the grant after a revocation (None: nothing)."""

    remaining: GrantOut | None


@router.post("/grants", summary="Grant publish and/or subscribe on a topic or pattern (owner, administrators)")
def grant(body: GrantIn, manager: Manager, caller: Caller) -> GrantOut:
    with _errors():
        return GrantOut.of(manager.grant(caller[0], body.target, body.grantee, body.rights, to_group=body.group))


@router.post("/grants/revoke", summary="Take back rights from a grantee (owner, administrators)")
def revoke(body: RevokeIn, manager: Manager, caller: Caller) -> RevokeOut:
    with _errors():
        left = manager.revoke(caller[0], body.target, body.grantee, body.rights, to_group=body.group)
    return RevokeOut(remaining=GrantOut.of(left) if left is not None else None)


@router.get("/grants", summary="Grants the caller manages or holds (all, for administrators)")
def list_grants(manager: Manager, caller: Caller,
                target: Annotated[str | None, Query(pattern=TARGET_PATTERN, max_length=1024)] = None) -> list[GrantOut]:
    return [GrantOut.of(g) for g in manager.list_grants(caller[0], target)]
