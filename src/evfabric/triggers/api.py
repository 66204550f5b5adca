"""The triggers' REST routes, part of the evfabric web service (``/triggers``).

Authenticated like the rest of the API (``Authorization: Bearer <token>``). Administrators manage
every trigger; other identities manage triggers whose pattern lies in their own namespace
(``users.<name>.``...), with ``webhook`` actions only (``python`` and ``shell`` actions run code
on the server: 403 for anyone but an administrator), and a trigger records who made it in
``run_as``. The routes validate without importing anything, and sign what they store with the
service's trigger key (:func:`use_triggers`), naming the caller as the creator, so that the
runner knows the definition came through here. They talk to the broker with a fabric client
made on first use from ``app.state.broker_url`` (set by :func:`use_triggers`; default
``$EVFABRIC_URL``); no broker gives 503.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from evfabric.access.api import Caller, _errors
from evfabric.access.model import Identity
from evfabric.core.errors import BrokerUnavailable
from evfabric.core.topics import MANY, ONE, Pattern
from evfabric.triggers.manager import TriggerManager
from evfabric.triggers.signing import TriggerKey
from evfabric.triggers.spec import PRIVILEGED_KINDS, TriggerSpec

__all__ = ["router", "use_triggers"]

router = APIRouter(prefix="/triggers", tags=["triggers"])
NamePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["python", "shell", "webhook"]
    target: str = Field(min_length=1, max_length=4096)
    pass_batch: bool = False


class TriggerIn(BaseModel):
    """A trigger definition (see docs/triggers.md for each field)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    pattern: str = Field(min_length=1, max_length=1024)
    action: ActionIn
    filter: str | None = Field(default=None, max_length=4096)
    batch_size: int = Field(default=1, ge=1, le=100_000)
    batch_window: float = Field(default=0.0, ge=0, le=3600)
    start: str = "latest"
    timeout: float = Field(default=30.0, gt=0, le=86400)
    retries: int = Field(default=3, ge=0, le=1000)
    backoff: float = Field(default=0.5, ge=0, le=3600)
    ack_wait: float | None = Field(default=None, gt=0, le=86400)
    min_concurrency: int = Field(default=1, ge=1, le=1024)
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    enabled: bool = True


class TriggerPatch(BaseModel):
    """Fields to change; the others stay."""

    model_config = ConfigDict(extra="forbid")
    pattern: str | None = Field(default=None, min_length=1, max_length=1024)
    action: ActionIn | None = None
    filter: str | None = Field(default=None, max_length=4096)
    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    batch_window: float | None = Field(default=None, ge=0, le=3600)
    timeout: float | None = Field(default=None, gt=0, le=86400)
    retries: int | None = Field(default=None, ge=0, le=1000)
    backoff: float | None = Field(default=None, ge=0, le=3600)
    min_concurrency: int | None = Field(default=None, ge=1, le=1024)
    max_concurrency: int | None = Field(default=None, ge=1, le=1024)
    enabled: bool | None = None


def use_triggers(app: FastAPI, broker_url: str, key: TriggerKey | None = None) -> None:
    """Make ``app``'s trigger routes talk to the broker at ``broker_url`` (with credentials if
    needed), signing definitions with ``key`` (the runners' key: ``TriggerKey.in_dir(data_dir)``)."""
    app.state.broker_url = broker_url
    app.state.trigger_key = key

    async def close_client() -> None:
        manager = getattr(app.state, "trigger_manager", None)
        if manager is not None:
            app.state.trigger_manager = None
            await manager.client.close()

    app.router.on_shutdown.append(close_client)


async def _manager(request: Request) -> TriggerManager:
    state = request.app.state
    manager = getattr(state, "trigger_manager", None)
    if manager is None:
        from evfabric.fabric.aio import connect_async

        url = getattr(state, "broker_url", None) or os.environ.get("EVFABRIC_URL")
        if not url:
            raise HTTPException(503, "no broker configured for the trigger routes (use_triggers(app, url))")
        try:
            client = await connect_async(url, source="evfabric-web", connect_timeout=2.0)
        except BrokerUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        manager = state.trigger_manager = TriggerManager(client, key=getattr(state, "trigger_key", None))
    return manager


def _may_define(identity: Identity, kind: str) -> None:
    """``python`` and ``shell`` actions run code on the server: administrators only."""
    if kind in PRIVILEGED_KINDS and not identity.admin:
        raise HTTPException(403, f"{identity.name} may not define a {kind} action: it runs code on the server, "
                                 "which only administrators may decide; use a webhook")


def _may_manage(identity: Identity, pattern: str) -> None:
    """Administrators: any pattern; others: patterns inside their namespace."""
    if identity.admin:
        return
    ns = identity.namespace.split(".")
    head = []
    for seg in Pattern(pattern).segments:
        if seg in (ONE, MANY):
            break
        head.append(seg)
    if head[: len(ns)] != ns or len(head) < len(ns):
        raise HTTPException(403, f"{identity.name} may define triggers only on patterns under {identity.namespace}.")


def _out(spec: Any) -> dict[str, Any]:
    return msgspec.to_builtins(spec)


@router.get("", summary="List the triggers")
async def list_triggers(request: Request, caller: Caller) -> list[dict[str, Any]]:
    manager = await _manager(request)
    specs = await manager.list()
    ident = caller[0]
    return [_out(s) for s in specs if ident.admin or s.run_as == ident.name]


@router.post("", status_code=201, summary="Create a trigger (validated now: module, pattern, filter)")
async def create_trigger(body: TriggerIn, request: Request, caller: Caller) -> dict[str, Any]:
    manager = await _manager(request)
    with _errors():
        _may_manage(caller[0], body.pattern)
        _may_define(caller[0], body.action.kind)
        data = body.model_dump()
        name, pattern, action = data.pop("name"), data.pop("pattern"), data.pop("action")
        spec = await manager.create(name, pattern, action, run_as=caller[0].name, creator=caller[0].name, **data)
    return _out(spec)


async def _owned(request: Request, caller: Caller, name: str, changes: bool = True) -> tuple[TriggerManager, TriggerSpec]:
    """The manager and ``name``'s definition, if the caller may manage it (and, when it
    ``changes`` it, may define its kind of action)."""
    manager = await _manager(request)
    with _errors("path"):
        spec = await manager.get(name)
    if not (caller[0].admin or spec.run_as == caller[0].name):
        raise HTTPException(403, f"trigger {name!r} belongs to {spec.run_as or 'an administrator'}")
    if changes:
        _may_define(caller[0], spec.action.kind)
    return manager, spec


@router.get("/{name}", summary="A trigger's definition, counters and newest invocations")
async def describe_trigger(name: NamePath, request: Request, caller: Caller) -> dict[str, Any]:
    manager, _ = await _owned(request, caller, name, changes=False)
    return await manager.describe(name)


@router.patch("/{name}", summary="Change fields of a trigger")
async def update_trigger(name: NamePath, body: TriggerPatch, request: Request, caller: Caller) -> dict[str, Any]:
    manager, _ = await _owned(request, caller, name)
    changes = body.model_dump(exclude_unset=True)
    with _errors():
        if "pattern" in changes:
            _may_manage(caller[0], changes["pattern"])
        if body.action is not None:
            _may_define(caller[0], body.action.kind)
        spec = await manager.update(name, creator=caller[0].name, **changes)
    return _out(spec)


@router.post("/{name}/enable", summary="Run a disabled trigger again")
async def enable_trigger(name: NamePath, request: Request, caller: Caller) -> dict[str, Any]:
    manager, _ = await _owned(request, caller, name)
    return _out(await manager.enable(name, creator=caller[0].name))


@router.post("/{name}/disable", summary="Stop running a trigger (its events wait)")
async def disable_trigger(name: NamePath, request: Request, caller: Caller) -> dict[str, Any]:
    manager, _ = await _owned(request, caller, name)
    return _out(await manager.disable(name, creator=caller[0].name))


@router.delete("/{name}", status_code=204, summary="Delete a trigger and its consumers")
async def delete_trigger(name: NamePath, request: Request, caller: Caller) -> Response:
    manager, _ = await _owned(request, caller, name, changes=False)
    await manager.delete(name)
    return Response(status_code=204)


@router.get("/{name}/logs", summary="A trigger's newest invocations")
async def trigger_logs(
    name: NamePath, request: Request, caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    manager, _ = await _owned(request, caller, name, changes=False)
    return await manager.logs(name, limit)
