"""A Python client of the web service's REST API (``/access``, ``/triggers``), so nobody crafts
HTTP calls by hand (like Octopus's diaspora SDK):

    from evfabric.access.admin import Admin
    admin = Admin("http://127.0.0.1:8080", token=alice_token)   # or $EVFABRIC_TOKEN
    admin.register_topic("experiments")
    admin.grant("experiments.?", "bob", ["subscribe"])
    bob_token = admin.create_token("bob")["token"]             # administrators, or bob's owner
    admin.revoke("experiments.?", "bob")
    admin.create_trigger("archive", "experiments.*", {"kind": "shell", "target": "./archive.sh"})

Every method is one request and returns the decoded JSON answer. Refusals raise the evfabric
error of the status: 401/403 :class:`AccessDenied`, 404 :class:`NotFound`, 409
:class:`AlreadyExists`, 422 :class:`ConfigError`; an unreachable service :class:`BrokerUnavailable`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import httpx

from evfabric.core.errors import AccessDenied, AlreadyExists, BrokerUnavailable, ConfigError, EvfabricError, NotFound

__all__ = ["Admin"]

DEFAULT_WEB_URL = "http://127.0.0.1:8080"

_ERRORS: dict[int, type[EvfabricError]] = {401: AccessDenied, 403: AccessDenied, 404: NotFound,
                                           409: AlreadyExists, 422: ConfigError}


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        return resp.text[:300]
    if isinstance(detail, list):  # validation errors: [{"loc": [...], "msg": ...}]
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


class Admin:
    """The web service at ``url`` as ``token`` (default ``$EVFABRIC_TOKEN``). Thread-safe; close it
    (or use ``with``) to release the connection pool."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 10.0,
                 verify: Any = True) -> None:
        self.url = (url or os.environ.get("EVFABRIC_WEB_URL") or DEFAULT_WEB_URL).rstrip("/")
        token = token or os.environ.get("EVFABRIC_TOKEN")
        headers = {"Authorization": f"Bearer {token.strip()}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=verify)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BrokerUnavailable(f"no evfabric web service answers at {self.url} ({type(exc).__name__}: {exc}); "
                                    "`evfabric serve` starts one") from None
        if resp.status_code >= 400:
            err = _ERRORS.get(resp.status_code, EvfabricError)
            raise err(f"{method} {path}: HTTP {resp.status_code}: {_detail(resp)}")
        return resp.json() if resp.content else None

    # -- who am I ----------------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The caller's identity, token and groups."""
        return dict(self._call("GET", "/access/whoami"))

    def check(self, identity: str, right: str, topic: str) -> bool:
        """Whether ``identity`` may ``right`` (publish/subscribe) on ``topic``."""
        out = self._call("GET", "/access/check", params={"identity": identity, "right": right, "topic": topic})
        return bool(out.get("allowed")) if isinstance(out, dict) else bool(out)

    # -- identities -------------------------------------------------------------------------------

    def create_identity(self, name: str, *, kind: str = "user", admin: bool = False, owner: str | None = None,
                        description: str = "") -> dict[str, Any]:
        """Create a user (or ``kind="service"``) identity."""
        body: dict[str, Any] = {"name": name, "kind": kind, "admin": admin, "description": description}
        if owner is not None:
            body["owner"] = owner
        return dict(self._call("POST", "/access/identities", json=body))

    def identities(self) -> list[dict[str, Any]]:
        """Identities the caller may manage."""
        return list(self._call("GET", "/access/identities"))

    def identity(self, name: str) -> dict[str, Any]:
        """One identity."""
        return dict(self._call("GET", f"/access/identities/{name}"))

    def delete_identity(self, name: str) -> None:
        """Delete an identity, its tokens and its topics."""
        self._call("DELETE", f"/access/identities/{name}")

    # -- tokens -------------------------------------------------------------------------------------

    def create_token(self, identity: str | None = None, *, expires_in: float | None = None,
                     description: str = "") -> dict[str, Any]:
        """Issue a token for ``identity`` (default: the caller): ``{"token": <the secret, shown only
        now>, "info": {"id": ..., "expires": ...}}``."""
        body: dict[str, Any] = {"description": description}
        if identity is not None:
            body["identity"] = identity
        if expires_in is not None:
            body["expires_in"] = expires_in
        return dict(self._call("POST", "/access/tokens", json=body))

    issue_token = create_token

    def tokens(self, identity: str | None = None) -> list[dict[str, Any]]:
        """Tokens the caller may manage (or those of ``identity``), never their secrets."""
        return list(self._call("GET", "/access/tokens", params={"identity": identity} if identity else None))

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token: its connections are dropped within seconds."""
        return dict(self._call("DELETE", f"/access/tokens/{token_id}"))

    # -- topics and grants ------------------------------------------------------------------------

    def register_topic(self, name: str, *, owner: str | None = None, description: str = "") -> dict[str, Any]:
        """Own topic ``name`` and everything below it (``owner``: administrators name another)."""
        body: dict[str, Any] = {"name": name, "description": description}
        if owner is not None:
            body["owner"] = owner
        return dict(self._call("POST", "/access/topics", json=body))

    def topics(self) -> list[dict[str, Any]]:
        """Registered topics the caller owns or holds rights on."""
        return list(self._call("GET", "/access/topics"))

    def topic(self, name: str) -> dict[str, Any]:
        """A registered topic and who has access to it."""
        return dict(self._call("GET", f"/access/topics/{name}"))

    def unregister_topic(self, name: str) -> None:
        """Unregister a topic and the grants under it."""
        self._call("DELETE", f"/access/topics/{name}")

    def grant(self, target: str, grantee: str, rights: Iterable[str] = ("subscribe",), *,
              group: bool = False) -> dict[str, Any]:
        """Grant ``rights`` (publish, subscribe) on a topic or pattern to an identity (or a group)."""
        return dict(self._call("POST", "/access/grants", json={"target": target, "grantee": grantee,
                                                                 "group": group, "rights": list(rights)}))

    def revoke(self, target: str, grantee: str, rights: Iterable[str] | None = None, *,
               group: bool = False) -> dict[str, Any]:
        """Take back ``rights`` (default: all) on ``target`` from ``grantee``."""
        body: dict[str, Any] = {"target": target, "grantee": grantee, "group": group}
        if rights is not None:
            body["rights"] = list(rights)
        return dict(self._call("POST", "/access/grants/revoke", json=body))

    def grants(self) -> list[dict[str, Any]]:
        """Grants the caller manages or holds."""
        return list(self._call("GET", "/access/grants"))

    # -- triggers -----------------------------------------------------------------------------------

    def create_trigger(self, name: str, pattern: str, action: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """Create a trigger: ``action`` is ``{"kind": "python"|"shell"|"webhook", "target": ...}``;
        ``fields``: filter, batch_size, batch_window, retries, max_concurrency... (docs/triggers.md)."""
        return dict(self._call("POST", "/triggers", json={"name": name, "pattern": pattern, "action": action,
                                                           **fields}))

    def triggers(self) -> list[dict[str, Any]]:
        """The caller's triggers (all, for administrators)."""
        return list(self._call("GET", "/triggers"))

    def trigger(self, name: str) -> dict[str, Any]:
        """A trigger's definition, counters and newest invocations."""
        return dict(self._call("GET", f"/triggers/{name}"))

    def update_trigger(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change fields of a trigger."""
        return dict(self._call("PATCH", f"/triggers/{name}", json=changes))

    def enable_trigger(self, name: str, enabled: bool = True) -> dict[str, Any]:
        """Run a disabled trigger again (``enabled=False``: stop it; its events wait)."""
        return dict(self._call("POST", f"/triggers/{name}/{'enable' if enabled else 'disable'}"))

    def delete_trigger(self, name: str) -> None:
        """Delete a trigger and its consumers."""
        self._call("DELETE", f"/triggers/{name}")

    def trigger_logs(self, name: str) -> list[dict[str, Any]]:
        """A trigger's newest invocations."""
        return list(self._call("GET", f"/triggers/{name}/logs"))

    # -- closing ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<evfabric Admin {self.url}>"
