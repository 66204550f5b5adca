"""``evfabric user|group|token|grant ...``: manage identities, tokens, topic ownership and grants.

These commands work on the access store of a broker's data directory (``--data-dir``, the same
default as ``evfabric serve``), as the machine's operator: whoever can write that file is
trusted. A running ``evfabric serve`` notices the changes within a second and reloads the
broker. Once the store holds an identity, ``evfabric serve`` on that directory requires tokens
(serve attaches the store's access control explicitly: importing this module registers nothing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from evfabric.access.model import Grant, Identity, IdentityKind, Right, TokenInfo
from evfabric.access.policy import access_list, allows
from evfabric.access.store import AccessStore
from evfabric.core.errors import EvfabricError

DEFAULT_DATA_DIR = Path(".evfabric") / "broker"

_DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", "-d", help="the broker's data directory (holds access.db)")
_Json = typer.Option(False, "--json", help="print JSON")


@contextmanager
def _store(data_dir: Path) -> Iterator[AccessStore]:
    try:
        yield AccessStore.in_dir(data_dir)
    except EvfabricError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _when(t: float | None) -> str:
    return "never" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _ident_row(i: Identity) -> dict[str, Any]:
    return {"name": i.name, "kind": i.kind.value, "admin": i.admin, "owner": i.owner, "description": i.description}


def _token_row(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "identity": t.identity, "state": t.state, "created": t.created, "expires": t.expires,
            "description": t.description}


def _grant_row(g: Grant) -> dict[str, Any]:
    return {"target": g.target, "grantee": g.grantee, "group": g.to_group,
            "rights": sorted(r.value for r in g.rights), "granted_by": g.granted_by}


def _print_rows(rows: list[dict[str, Any]], as_json: bool, fmt: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            typer.echo(fmt(r))


def _rights(publish: bool, subscribe: bool) -> list[Right]:
    out = ([Right.PUBLISH] if publish else []) + ([Right.SUBSCRIBE] if subscribe else [])
    if not out:
        raise typer.BadParameter("give --publish and/or --subscribe")
    return out


def _issue(store: AccessStore, name: str, expires_in: float | None, description: str) -> None:
    issued = store.issue_token(name, expires_in=expires_in, description=description)
    typer.echo(f"token for {name} (id {issued.info.id}, expires {_when(issued.info.expires)}); shown only now:")
    typer.echo(issued.secret)


def register(app: typer.Typer) -> None:
    user = typer.Typer(help="Identities: users and services.", no_args_is_help=True)
    group = typer.Typer(help="Groups of identities (grants can name a group).", no_args_is_help=True)
    token = typer.Typer(help="Tokens: issue, list, expire, revoke.", no_args_is_help=True)
    grant = typer.Typer(help="Topic ownership and grants (publish/subscribe on a topic or pattern).",
                        no_args_is_help=True)
    app.add_typer(user, name="user")
    app.add_typer(group, name="group")
    app.add_typer(token, name="token")
    app.add_typer(grant, name="grant")

    # --- user --------------------------------------------------------------------------------

    @user.command("create")
    def user_create(
        name: str,
        admin: bool = typer.Option(False, "--admin", help="an administrator (may do everything)"),
        service: bool = typer.Option(False, "--service", help="a service identity (a trigger, a pipeline)"),
        owner: str | None = typer.Option(None, "--owner", help="the user who manages this service"),
        description: str = typer.Option("", "--description"),
        with_token: bool = typer.Option(False, "--token", help="also issue a token and print it"),
        data_dir: Path = _DataDir,
    ) -> None:
        """Create a user (or a service with --service); it owns the topics under users.NAME."""
        with _store(data_dir) as st:
            kind = IdentityKind.SERVICE if service else IdentityKind.USER
            ident = st.create_identity(name, kind, admin=admin, owner=owner, description=description)
            typer.echo(f"created {kind.value} {ident.name}{' (admin)' if admin else ''}; namespace {ident.namespace}")
            if with_token:
                _issue(st, name, None, "issued at creation")

    @user.command("list")
    def user_list(data_dir: Path = _DataDir, as_json: bool = _Json) -> None:
        """List identities."""
        with _store(data_dir) as st:
            rows = [_ident_row(i) for i in st.list_identities()]
        _print_rows(rows, as_json, lambda r: f"{r['name']:24} {r['kind']:8} {'admin' if r['admin'] else '':6}"
                                             f" {('owner=' + r['owner']) if r['owner'] else ''}")

    @user.command("delete")
    def user_delete(name: str, data_dir: Path = _DataDir) -> None:
        """Delete an identity with its tokens, memberships, grants and registered topics."""
        with _store(data_dir) as st:
            st.delete_identity(name)
        typer.echo(f"deleted {name}")

    @user.command("admin")
    def user_admin(name: str, on: bool = typer.Option(True, "--on/--off"), data_dir: Path = _DataDir) -> None:
        """Make an identity an administrator (--on) or not (--off)."""
        with _store(data_dir) as st:
            st.set_admin(name, on)
        typer.echo(f"{name}: admin {'on' if on else 'off'}")

    # --- group -------------------------------------------------------------------------------

    @group.command("create")
    def group_create(name: str, member: list[str] = typer.Option([], "--member", "-m", help="a member (repeat)"),
                     data_dir: Path = _DataDir) -> None:
        """Create a group."""
        with _store(data_dir) as st:
            g = st.create_group(name, members=member)
        typer.echo(f"created group {g.name}: {', '.join(g.members) or 'no members'}")

    @group.command("add")
    def group_add(name: str, member: str, data_dir: Path = _DataDir) -> None:
        """Add MEMBER to group NAME."""
        with _store(data_dir) as st:
            g = st.add_member(name, member)
        typer.echo(f"group {g.name}: {', '.join(g.members)}")

    @group.command("remove")
    def group_remove(name: str, member: str, data_dir: Path = _DataDir) -> None:
        """Remove MEMBER from group NAME."""
        with _store(data_dir) as st:
            g = st.remove_member(name, member)
        typer.echo(f"group {g.name}: {', '.join(g.members) or 'no members'}")

    @group.command("list")
    def group_list(data_dir: Path = _DataDir, as_json: bool = _Json) -> None:
        """List groups and their members."""
        with _store(data_dir) as st:
            rows = [{"name": g.name, "members": list(g.members)} for g in st.list_groups()]
        _print_rows(rows, as_json, lambda r: f"{r['name']:24} {', '.join(r['members'])}")

    @group.command("delete")
    def group_delete(name: str, data_dir: Path = _DataDir) -> None:
        """Delete a group and the grants made to it."""
        with _store(data_dir) as st:
            st.delete_group(name)
        typer.echo(f"deleted group {name}")

    # --- token -------------------------------------------------------------------------------

    @token.command("issue")
    def token_issue(
        name: str,
        expires_in: float | None = typer.Option(None, "--expires-in", help="seconds until it expires"),
        description: str = typer.Option("", "--description"),
        data_dir: Path = _DataDir,
    ) -> None:
        """Issue a token for NAME (its other tokens stay valid). The secret is printed once."""
        with _store(data_dir) as st:
            _issue(st, name, expires_in, description)

    @token.command("list")
    def token_list(name: str | None = typer.Argument(None), data_dir: Path = _DataDir, as_json: bool = _Json) -> None:
        """List tokens (of NAME, or all): ids and states, never secrets."""
        with _store(data_dir) as st:
            rows = [_token_row(t) for t in st.list_tokens(name)]
        _print_rows(rows, as_json, lambda r: f"{r['id']} {r['identity']:20} {r['state']:8} expires "
                                             f"{_when(r['expires'])} {r['description']}")

    @token.command("revoke")
    def token_revoke(token_id: str, data_dir: Path = _DataDir) -> None:
        """Revoke a token: the broker drops its connections within seconds."""
        with _store(data_dir) as st:
            st.revoke_token(token_id)
        typer.echo(f"revoked {token_id}")

    @token.command("expire")
    def token_expire(token_id: str, data_dir: Path = _DataDir) -> None:
        """Make a token expire now."""
        with _store(data_dir) as st:
            st.expire_token(token_id)
        typer.echo(f"expired {token_id}")

    # --- grant -------------------------------------------------------------------------------

    @grant.command("register")
    def grant_register(topic: str, owner: str = typer.Option(..., "--owner", help="the owning identity"),
                       description: str = typer.Option("", "--description"), data_dir: Path = _DataDir) -> None:
        """Register TOPIC as owned by --owner (it and its subtopics)."""
        with _store(data_dir) as st:
            st.register_topic(topic, owner, description)
        typer.echo(f"{topic} is owned by {owner}")

    @grant.command("unregister")
    def grant_unregister(topic: str, data_dir: Path = _DataDir) -> None:
        """Unregister TOPIC and drop the grants under it."""
        with _store(data_dir) as st:
            st.unregister_topic(topic)
        typer.echo(f"unregistered {topic}")

    @grant.command("topics")
    def grant_topics(data_dir: Path = _DataDir, as_json: bool = _Json) -> None:
        """List registered topics and their owners."""
        with _store(data_dir) as st:
            rows = [{"topic": t.name, "owner": t.owner, "description": t.description} for t in st.list_topics()]
        _print_rows(rows, as_json, lambda r: f"{r['topic']:40} {r['owner']}")

    @grant.command("add")
    def grant_add(target: str, grantee: str,
                  publish: bool = typer.Option(False, "--publish", help="may publish"),
                  subscribe: bool = typer.Option(False, "--subscribe", help="may subscribe"),
                  to_group: bool = typer.Option(False, "--group", help="GRANTEE is a group"),
                  data_dir: Path = _DataDir) -> None:
        """Give GRANTEE rights on TARGET (a topic and its subtopics, or a pattern with '?'/'*' last)."""
        rights = _rights(publish, subscribe)
        with _store(data_dir) as st:
            g = st.grant(target, grantee, rights, to_group=to_group, granted_by="cli")
        typer.echo(f"{grantee}: {', '.join(sorted(r.value for r in g.rights))} on {target}")

    @grant.command("revoke")
    def grant_revoke(target: str, grantee: str,
                     publish: bool = typer.Option(False, "--publish"), subscribe: bool = typer.Option(False, "--subscribe"),
                     to_group: bool = typer.Option(False, "--group", help="GRANTEE is a group"),
                     data_dir: Path = _DataDir) -> None:
        """Take back rights (all, unless --publish/--subscribe says which)."""
        rights = _rights(publish, subscribe) if (publish or subscribe) else None
        with _store(data_dir) as st:
            left = st.revoke(target, grantee, rights, to_group=to_group)
        typer.echo(f"{grantee}: {', '.join(sorted(r.value for r in left.rights)) if left else 'no rights'} on {target}")

    @grant.command("list")
    def grant_list(target: str | None = typer.Option(None, "--target"), data_dir: Path = _DataDir,
                   as_json: bool = _Json) -> None:
        """List grants."""
        with _store(data_dir) as st:
            rows = [_grant_row(g) for g in st.list_grants() if target is None or g.target == target]
        _print_rows(rows, as_json, lambda r: f"{r['target']:40} {'group ' if r['group'] else ''}{r['grantee']:20} "
                                             f"{','.join(r['rights'])}")

    @grant.command("who")
    def grant_who(topic: str, data_dir: Path = _DataDir, as_json: bool = _Json) -> None:
        """Who has access to TOPIC (its owner, and grants overlapping it)."""
        with _store(data_dir) as st:
            rows = access_list(st.snapshot(), topic)
        _print_rows(rows, as_json, lambda r: f"{'group ' if r['group'] else ''}{r['grantee']:24} "
                                             f"{','.join(r['rights']):20} on {r['target']}")

    @grant.command("check")
    def grant_check(name: str, right: Right, topic: str, data_dir: Path = _DataDir) -> None:
        """Whether NAME may RIGHT (publish|subscribe) on TOPIC; exit code 1 if not."""
        with _store(data_dir) as st:
            ok = allows(st.snapshot(), name, right, topic)
        typer.echo(f"{name} {'may' if ok else 'may not'} {right.value} on {topic}")
        if not ok:
            raise typer.Exit(1)
