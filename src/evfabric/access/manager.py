"""``AccessManager``: the access store's operations, each checked against the acting identity.

This is what the REST API and the CLI call. Rules (see :mod:`evfabric.access.policy`):

* administrators may do everything;
* any user may create service identities it owns, and manage (tokens, deletion) itself and its
  services; only administrators create users, groups, and other administrators;
* any identity may register a free topic outside ``cca`` and outside other namespaces, and
  becomes its owner; owners grant, revoke, list access to and unregister what they own;
* a non-administrator sees itself, its services, its tokens, and the topics and grants it owns
  or holds.

Refusals raise :class:`~evfabric.core.errors.AccessDenied` naming the missing right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from evfabric.access import policy
from evfabric.access.model import (
    Grant,
    Group,
    Identity,
    IdentityKind,
    IssuedToken,
    Right,
    TokenInfo,
    TopicRecord,
    validate_target,
)
from evfabric.access.store import AccessStore
from evfabric.core.errors import AccessDenied, ConfigError
from evfabric.core.topics import validate_topic
from evfabric.fabric.catalog import namespace_of as stream_namespace
from evfabric.fabric.subjects import intersect

__all__ = ["AccessManager"]


class AccessManager:
    """The access operations on ``store``, each taking the acting :class:`Identity` first."""

    def __init__(self, store: AccessStore) -> None:
        self.store = store

    # --- helpers -----------------------------------------------------------------------------

    def authenticate(self, token: str) -> Identity:
        """The identity of a token string; :class:`AccessDenied` if it is not valid now."""
        return self.store.authenticate(token)[0]

    @staticmethod
    def _admin(actor: Identity, what: str) -> None:
        if not actor.admin:
            raise AccessDenied(f"{what}: administrators only ({actor.name!r} is not one)")

    def _manage_identity(self, actor: Identity, name: str, what: str) -> policy.Snapshot:
        snap = self.store.snapshot()
        if name not in snap.identities:
            self.store.get_identity(name)  # raises NotFound
        if not policy.can_manage_identity(snap, actor.name, name):
            raise AccessDenied(f"{what}: {actor.name!r} may not manage identity {name!r}")
        return snap

    # --- identities --------------------------------------------------------------------------

    def create_identity(self, actor: Identity, name: str, kind: IdentityKind | str = IdentityKind.USER, *,
                        admin: bool = False, owner: str | None = None, description: str = "") -> Identity:
        """Create an identity. Non-administrators may only create services they own."""
        try:
            kind = IdentityKind(kind)
        except ValueError:
            raise ConfigError(f"kind: {kind!r} must be 'user' or 'service'") from None
        if not actor.admin:
            if kind is not IdentityKind.SERVICE or admin:
                raise AccessDenied("create identity: only administrators create users and administrators")
            if owner not in (None, actor.name):
                raise AccessDenied("create identity: a service you create is owned by you")
            owner = actor.name
        return self.store.create_identity(name, kind, admin=admin, owner=owner, description=description)

    def list_identities(self, actor: Identity) -> list[Identity]:
        """All identities for an administrator; oneself and one's services otherwise."""
        snap = self.store.snapshot()
        return [i for i in self.store.list_identities() if policy.can_manage_identity(snap, actor.name, i.name)]

    def get_identity(self, actor: Identity, name: str) -> Identity:
        """One identity, if ``actor`` may manage it."""
        self._manage_identity(actor, name, "get identity")
        return self.store.get_identity(name)

    def delete_identity(self, actor: Identity, name: str) -> None:
        """Delete an identity (administrators; owners of a service). Nobody deletes itself here."""
        self._manage_identity(actor, name, "delete identity")
        if name == actor.name:
            raise AccessDenied("delete identity: an identity cannot delete itself")
        self.store.delete_identity(name)

    def set_admin(self, actor: Identity, name: str, admin: bool) -> Identity:
        """Make ``name`` an administrator or not (administrators only)."""
        self._admin(actor, "set admin")
        if name == actor.name and not admin:
            raise AccessDenied("set admin: an administrator cannot demote itself (so that one always remains)")
        return self.store.set_admin(name, admin)

    # --- groups ------------------------------------------------------------------------------

    def create_group(self, actor: Identity, name: str, description: str = "", members: Iterable[str] = ()) -> Group:
        """Create a group (administrators only)."""
        self._admin(actor, "create group")
        return self.store.create_group(name, description, members)

    def list_groups(self, actor: Identity) -> list[Group]:
        """All groups for an administrator; the groups one belongs to otherwise."""
        groups = self.store.list_groups()
        return groups if actor.admin else [g for g in groups if actor.name in g.members]

    def get_group(self, actor: Identity, name: str) -> Group:
        """One group (administrators, members)."""
        group = self.store.get_group(name)
        if not actor.admin and actor.name not in group.members:
            raise AccessDenied(f"get group: {actor.name!r} is not a member of {name!r}")
        return group

    def delete_group(self, actor: Identity, name: str) -> None:
        """Delete a group (administrators only)."""
        self._admin(actor, "delete group")
        self.store.delete_group(name)

    def add_member(self, actor: Identity, group: str, name: str) -> Group:
        """Add a member (administrators only)."""
        self._admin(actor, "add member")
        return self.store.add_member(group, name)

    def remove_member(self, actor: Identity, group: str, name: str) -> Group:
        """Remove a member (administrators only)."""
        self._admin(actor, "remove member")
        return self.store.remove_member(group, name)

    # --- tokens ------------------------------------------------------------------------------

    def issue_token(self, actor: Identity, identity: str | None = None, *, expires_in: float | None = None,
                    description: str = "") -> IssuedToken:
        """A new token for ``identity`` (default: the actor). Other tokens stay valid."""
        identity = identity or actor.name
        self._manage_identity(actor, identity, "issue token")
        return self.store.issue_token(identity, expires_in=expires_in, description=description)

    def list_tokens(self, actor: Identity, identity: str | None = None) -> list[TokenInfo]:
        """Tokens of ``identity``, or every token ``actor`` may manage."""
        if identity is not None:
            self._manage_identity(actor, identity, "list tokens")
            return self.store.list_tokens(identity)
        snap = self.store.snapshot()
        return [t for t in self.store.list_tokens() if policy.can_manage_identity(snap, actor.name, t.identity)]

    def get_token(self, actor: Identity, token_id: str) -> TokenInfo:
        """One token (no secret), if ``actor`` may manage its identity."""
        info = self.store.get_token(token_id)
        self._manage_identity(actor, info.identity, "get token")
        return info

    def revoke_token(self, actor: Identity, token_id: str) -> TokenInfo:
        """Revoke a token; the broker drops its connections at the next reload (immediate in ``serve``)."""
        self.get_token(actor, token_id)
        return self.store.revoke_token(token_id)

    def expire_token(self, actor: Identity, token_id: str) -> TokenInfo:
        """Make a token expire now."""
        self.get_token(actor, token_id)
        return self.store.expire_token(token_id)

    # --- topics ------------------------------------------------------------------------------

    def register_topic(self, actor: Identity, name: str, *, owner: str | None = None,
                       description: str = "") -> TopicRecord:
        """Register topic ``name`` owned by ``owner`` (default the actor)."""
        validate_topic(name)
        snap = self.store.snapshot()
        owner = owner or actor.name
        if not policy.can_manage_identity(snap, actor.name, owner):
            raise AccessDenied(f"register topic: {actor.name!r} may not register topics for {owner!r}")
        if not policy.can_register(snap, owner, name) and not actor.admin:
            raise AccessDenied(f"register topic: {name!r} is reserved or in another identity's namespace")
        ns = stream_namespace(name)
        strangers = sorted({t.owner for t in snap.topics.values() if stream_namespace(t.name) == ns and t.owner != owner})
        overlaps = any(t.name == name or name.startswith(t.name + ".") or t.name.startswith(name + ".")
                       for t in snap.topics.values())
        if strangers and not actor.admin and not overlaps:  # (an overlap is refused as AlreadyExists below)
            # as the topic service refuses: a shared stream's limits are every topic's
            raise AccessDenied(f"register topic {name!r}: namespace {ns!r} shares one stream, which holds topics of "
                               f"{strangers[0]!r}; choose a topic in another namespace "
                               f"(e.g. users.{owner}.{name.split('.')[-1]})")
        return self.store.register_topic(name, owner, description)

    def list_topics(self, actor: Identity) -> list[TopicRecord]:
        """All registered topics for an administrator; those one owns or holds a right on otherwise."""
        snap = self.store.snapshot()
        topics = self.store.list_topics()
        if actor.admin:
            return topics
        mine = [f for t, _ in policy.rights_of(snap, actor.name) for f in policy.target_filters(t)]
        return [t for t in topics
                if any(intersect(a, b) is not None for a in mine for b in policy.target_filters(t.name))]

    def get_topic(self, actor: Identity, name: str) -> tuple[TopicRecord, list[dict[str, Any]]]:
        """A registered topic and who has access to it (owner and administrators only)."""
        rec = self.store.get_topic(name)
        snap = self.store.snapshot()
        if not policy.can_manage(snap, actor.name, name):
            raise AccessDenied(f"get topic: only the owner of {name!r} sees who has access")
        return rec, policy.access_list(snap, name)

    def unregister_topic(self, actor: Identity, name: str) -> None:
        """Unregister a topic and drop the grants under it (owner and administrators)."""
        self.store.get_topic(name)
        if not policy.can_manage(self.store.snapshot(), actor.name, name):
            raise AccessDenied(f"unregister topic: {actor.name!r} does not own {name!r}")
        self.store.unregister_topic(name)

    # --- grants ------------------------------------------------------------------------------

    def _check_target(self, actor: Identity, target: str, what: str) -> None:
        validate_target(target)
        if not policy.can_manage(self.store.snapshot(), actor.name, target):
            raise AccessDenied(f"{what}: {actor.name!r} does not own {target!r} (only its owner or an administrator "
                               "may share it)")

    def grant(self, actor: Identity, target: str, grantee: str, rights: Iterable[Right | str], *,
              to_group: bool = False) -> Grant:
        """Give ``grantee`` (identity or group) ``rights`` on ``target`` (owner or administrator)."""
        self._check_target(actor, target, "grant")
        return self.store.grant(target, grantee, rights, to_group=to_group, granted_by=actor.name)

    def revoke(self, actor: Identity, target: str, grantee: str, rights: Iterable[Right | str] | None = None, *,
               to_group: bool = False) -> Grant | None:
        """Take back ``rights`` (None = all) from ``grantee`` on ``target``; what is left, or None."""
        self._check_target(actor, target, "revoke")
        return self.store.revoke(target, grantee, rights, to_group=to_group)

    def list_grants(self, actor: Identity, target: str | None = None) -> list[Grant]:
        """Grants ``actor`` may see (all for an administrator; those it manages or holds),
        optionally only those on exactly ``target``."""
        snap = self.store.snapshot()
        groups = snap.groups_of(actor.name)
        out = [g for g in snap.grants
               if actor.admin or policy.can_manage(snap, actor.name, g.target)
               or (g.to_group and g.grantee in groups) or (not g.to_group and g.grantee == actor.name)]
        return [g for g in out if target is None or g.target == target]

    def check(self, actor: Identity, right: Right | str, topic: str, name: str | None = None) -> bool:
        """Whether ``name`` (default the actor) may ``right`` on ``topic``; asking about another
        identity needs the right to manage it."""
        validate_topic(topic)
        try:
            right = Right(right)
        except ValueError:
            raise ConfigError(f"right: must be 'publish' or 'subscribe', got {right!r}") from None
        name = name or actor.name
        snap = self._manage_identity(actor, name, "check") if name != actor.name else self.store.snapshot()
        return policy.allows(snap, name, right, topic)
