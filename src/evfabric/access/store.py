"""``AccessStore``: the durable record of identities, groups, tokens, registered topics and grants.

One SQLite file (stdlib ``sqlite3``), by default ``<data dir>/access.db`` next to the broker's
store. SQLite gives atomic, durable changes and lets several processes share the file (the
``evfabric`` CLI and a running ``evfabric serve``): every change bumps a version number that a
running server polls (see :mod:`evfabric.access.control`), and in-process listeners registered
with :meth:`AccessStore.on_change` are called after each committed change.

The store keeps data consistent (names exist, no duplicates, no overlapping topics) but does not
decide who may do what: that is :mod:`evfabric.access.policy` and :mod:`evfabric.access.manager`.
Token secrets are never stored, only their hashes (:mod:`evfabric.access.tokens`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from evfabric.access.model import (
    NAMESPACE_ROOT,
    Grant,
    Group,
    Identity,
    IdentityKind,
    IssuedToken,
    Right,
    TokenInfo,
    TopicRecord,
    literal_prefix,
    validate_name,
    validate_target,
)
from evfabric.access.policy import Snapshot, subscribe_conflicts
from evfabric.access.tokens import bcrypt_hash, new_token, parse_token, sha256_hash, sha256_matches
from evfabric.core.clocks import SYSTEM_CLOCK, Clock
from evfabric.core.errors import AccessDenied, AlreadyExists, ConfigError, NotFound
from evfabric.core.topics import validate_topic

__all__ = ["DB_NAME", "AccessStore"]

DB_NAME = "access.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, admin INTEGER NOT NULL, owner TEXT,
    description TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, description TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (grp TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (grp, name));
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, identity TEXT NOT NULL, sha256 TEXT NOT NULL, bcrypt TEXT NOT NULL,
    created REAL NOT NULL, expires REAL, revoked REAL, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, owner TEXT NOT NULL, description TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
    target TEXT NOT NULL, grantee TEXT NOT NULL, to_group INTEGER NOT NULL, publish INTEGER NOT NULL,
    subscribe INTEGER NOT NULL, granted_by TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (target, grantee, to_group));
CREATE TABLE IF NOT EXISTS consumers (stream TEXT NOT NULL, name TEXT NOT NULL, identity TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (stream, name, identity));
INSERT OR IGNORE INTO meta VALUES ('version', '0');
INSERT OR IGNORE INTO meta VALUES ('schema', '1');
"""


def _identity(row: sqlite3.Row) -> Identity:
    return Identity(row["name"], IdentityKind(row["kind"]), bool(row["admin"]), row["owner"], row["description"],
                    row["created"])


def _token(row: sqlite3.Row) -> TokenInfo:
    return TokenInfo(row["id"], row["identity"], row["created"], row["expires"], row["revoked"], row["description"])


def _grant(row: sqlite3.Row) -> Grant:
    rights = frozenset(r for r, col in ((Right.PUBLISH, "publish"), (Right.SUBSCRIBE, "subscribe")) if row[col])
    return Grant(row["target"], row["grantee"], bool(row["to_group"]), rights, row["granted_by"], row["created"])


def _covers(root: str, topic: str) -> bool:
    return topic == root or topic.startswith(root + ".")


class AccessStore:
    """Identities, groups, tokens, topics and grants in one SQLite file (created if missing).

    Thread-safe and shareable between processes; each call is one transaction. ``clock`` is
    what "now" is for tokens (their issue, expiry, revocation and validity; default: the system
    clock): a test passes a :class:`~evfabric.core.clocks.ManualClock` to let a TTL pass.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            db.executescript(_SCHEMA)
        finally:
            db.close()
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # hashes only, but still nobody else's business

    @classmethod
    def in_dir(cls, data_dir: str | os.PathLike[str], *, clock: Clock | None = None) -> AccessStore:
        """The store of a server's data directory: ``<data_dir>/access.db``."""
        return cls(Path(data_dir) / DB_NAME, clock=clock)

    # --- plumbing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, change: bool = False) -> Iterator[sqlite3.Connection]:
        # one connection per transaction: simple, safe across threads, cheap for SQLite
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            try:
                db.execute("BEGIN IMMEDIATE" if change else "BEGIN")
                try:
                    yield db
                    if change:
                        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.close()
        if change:
            for listener in list(self._listeners):
                listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change committed through this object."""
        self._listeners.append(listener)

    def version(self) -> int:
        """A number that grows with every committed change (from any process)."""
        with self._tx() as db:
            return int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

    # --- identities --------------------------------------------------------------------------

    def create_identity(self, name: str, kind: IdentityKind | str = IdentityKind.USER, *, admin: bool = False,
                        owner: str | None = None, description: str = "") -> Identity:
        """Add a user or service identity; :class:`AlreadyExists` if the name is taken.

        ``owner`` (services only) is an existing user who may manage the service's tokens.
        """
        validate_name(name, "name")
        try:
            kind = IdentityKind(kind)
        except ValueError:
            raise ConfigError(f"kind: {kind!r} must be 'user' or 'service'") from None
        if owner is not None and kind is not IdentityKind.SERVICE:
            raise ConfigError("owner: only a service identity has an owner")
        ident = Identity(name, kind, bool(admin), owner, description)
        with self._tx(change=True) as db:
            if owner is not None and db.execute("SELECT 1 FROM identities WHERE name=?", (owner,)).fetchone() is None:
                raise NotFound(f"owner: no identity named {owner!r}")
            try:
                db.execute("INSERT INTO identities VALUES (?,?,?,?,?,?)",
                           (name, kind.value, int(admin), owner, description, ident.created))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"identity {name!r} already exists") from None
        return ident

    def get_identity(self, name: str) -> Identity:
        """The identity ``name``; :class:`NotFound` if there is none."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM identities WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no identity named {name!r}")
        return _identity(row)

    def list_identities(self) -> list[Identity]:
        """Every identity, by name."""
        with self._tx() as db:
            return [_identity(r) for r in db.execute("SELECT * FROM identities ORDER BY name")]

    def set_admin(self, name: str, admin: bool) -> Identity:
        """Make ``name`` an administrator or not."""
        with self._tx(change=True) as db:
            if db.execute("UPDATE identities SET admin=? WHERE name=?", (int(admin), name)).rowcount == 0:
                raise NotFound(f"no identity named {name!r}")
        return self.get_identity(name)

    def delete_identity(self, name: str) -> None:
        """Remove an identity with its tokens, group memberships, the grants made to it, its
        services' ownership, and the topics it registered (with the grants under them)."""
        owned = [t.name for t in self.list_topics() if t.owner == name]
        with self._tx(change=True) as db:
            if db.execute("DELETE FROM identities WHERE name=?", (name,)).rowcount == 0:
                raise NotFound(f"no identity named {name!r}")
            db.execute("DELETE FROM tokens WHERE identity=?", (name,))
            db.execute("DELETE FROM members WHERE name=?", (name,))
            db.execute("DELETE FROM consumers WHERE identity=?", (name,))
            db.execute("DELETE FROM grants WHERE grantee=? AND to_group=0", (name,))
            db.execute("UPDATE identities SET owner=NULL WHERE owner=?", (name,))
            for topic in [*owned, f"{NAMESPACE_ROOT}.{name}"]:
                db.execute("DELETE FROM topics WHERE name=?", (topic,))
                self._delete_grants_under(db, topic)

    # --- groups ------------------------------------------------------------------------------

    def create_group(self, name: str, description: str = "", members: Iterable[str] = ()) -> Group:
        """Add a group (optionally with members); :class:`AlreadyExists` if the name is taken."""
        validate_name(name, "name")
        now = time.time()
        with self._tx(change=True) as db:
            try:
                db.execute("INSERT INTO groups VALUES (?,?,?)", (name, description, now))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"group {name!r} already exists") from None
            for m in members:
                self._add_member(db, name, m)
        return self.get_group(name)

    def get_group(self, name: str) -> Group:
        """The group ``name`` with its members; :class:`NotFound` if there is none."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM groups WHERE name=?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no group named {name!r}")
            members = tuple(r[0] for r in db.execute("SELECT name FROM members WHERE grp=? ORDER BY name", (name,)))
        return Group(name, members, row["description"], row["created"])

    def list_groups(self) -> list[Group]:
        """Every group with its members, by name."""
        with self._tx() as db:
            names = [r[0] for r in db.execute("SELECT name FROM groups ORDER BY name")]
        return [self.get_group(n) for n in names]

    def delete_group(self, name: str) -> None:
        """Remove a group, its memberships and the grants made to it."""
        with self._tx(change=True) as db:
            if db.execute("DELETE FROM groups WHERE name=?", (name,)).rowcount == 0:
                raise NotFound(f"no group named {name!r}")
            db.execute("DELETE FROM members WHERE grp=?", (name,))
            db.execute("DELETE FROM grants WHERE grantee=? AND to_group=1", (name,))

    @staticmethod
    def _add_member(db: sqlite3.Connection, group: str, name: str) -> None:
        if db.execute("SELECT 1 FROM identities WHERE name=?", (name,)).fetchone() is None:
            raise NotFound(f"no identity named {name!r}")
        db.execute("INSERT OR IGNORE INTO members VALUES (?,?)", (group, name))

    def add_member(self, group: str, name: str) -> Group:
        """Put identity ``name`` in ``group`` (no error if already there)."""
        with self._tx(change=True) as db:
            if db.execute("SELECT 1 FROM groups WHERE name=?", (group,)).fetchone() is None:
                raise NotFound(f"no group named {group!r}")
            before = _read_snapshot(db)
            self._add_member(db, group, name)
            _keep_enforceable(db, before, (name,), f"add {name!r} to group {group!r}")
        return self.get_group(group)

    def remove_member(self, group: str, name: str) -> Group:
        """Take ``name`` out of ``group``; :class:`NotFound` if it is not a member."""
        with self._tx(change=True) as db:
            if db.execute("DELETE FROM members WHERE grp=? AND name=?", (group, name)).rowcount == 0:
                raise NotFound(f"{name!r} is not a member of group {group!r}")
        return self.get_group(group)

    # --- tokens ------------------------------------------------------------------------------

    def issue_token(self, identity: str, *, expires_in: float | None = None, expires_at: float | None = None,
                    description: str = "") -> IssuedToken:
        """A new token for ``identity``, valid until ``expires_at`` (or ``expires_in`` seconds from
        now; both None = no expiry). The identity's other tokens stay valid. The returned
        ``secret`` is the only copy of the token string."""
        now = self._clock.time()
        if expires_in is not None and expires_at is not None:
            raise ConfigError("expires_in, expires_at: give at most one")
        if expires_in is not None:
            if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or not expires_in > 0:
                raise ConfigError(f"expires_in: must be a positive number of seconds, got {expires_in!r}")
            expires_at = now + float(expires_in)
        elif expires_at is not None and not expires_at > now:
            raise ConfigError("expires_at: must be in the future")
        token_id, secret = new_token()
        info = TokenInfo(token_id, identity, now, expires_at, None, description)
        hashed = bcrypt_hash(secret)  # slow-ish: outside the lock's transaction
        with self._tx(change=True) as db:
            if db.execute("SELECT 1 FROM identities WHERE name=?", (identity,)).fetchone() is None:
                raise NotFound(f"no identity named {identity!r}")
            db.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?)",
                       (token_id, identity, sha256_hash(secret), hashed, now, expires_at, None, description))
        return IssuedToken(secret, info)

    def get_token(self, token_id: str) -> TokenInfo:
        """The token with this id (never its secret); :class:`NotFound`."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM tokens WHERE id=?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"no token with id {token_id!r}")
        return _token(row)

    def list_tokens(self, identity: str | None = None, *, valid_only: bool = False) -> list[TokenInfo]:
        """Tokens (of one identity, or all), oldest first; with ``valid_only`` only usable ones."""
        with self._tx() as db:
            if identity is None:
                rows = db.execute("SELECT * FROM tokens ORDER BY created, id").fetchall()
            else:
                rows = db.execute("SELECT * FROM tokens WHERE identity=? ORDER BY created, id", (identity,)).fetchall()
        out = [_token(r) for r in rows]
        now = self._clock.time()
        return [t for t in out if t.valid(now)] if valid_only else out

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Mark a token revoked (kept for the record; no error if it already was)."""
        with self._tx(change=True) as db:
            if db.execute("UPDATE tokens SET revoked=COALESCE(revoked, ?) WHERE id=?",
                          (self._clock.time(), token_id)).rowcount == 0:
                raise NotFound(f"no token with id {token_id!r}")
        return self.get_token(token_id)

    def expire_token(self, token_id: str) -> TokenInfo:
        """End a token's validity now (its expiry becomes now, if that is earlier)."""
        with self._tx(change=True) as db:
            now = self._clock.time()
            if db.execute("UPDATE tokens SET expires=MIN(COALESCE(expires, ?), ?) WHERE id=?",
                          (now, now, token_id)).rowcount == 0:
                raise NotFound(f"no token with id {token_id!r}")
        return self.get_token(token_id)

    def renew_token(self, token_id: str, expires_in: float) -> TokenInfo:
        """Move a still-valid token's expiry to ``expires_in`` seconds from now (its secret, and
        connections made with it, stay); :class:`NotFound` if it is unknown, revoked or expired."""
        with self._tx(change=True) as db:
            now = self._clock.time()
            if db.execute("UPDATE tokens SET expires=? WHERE id=? AND revoked IS NULL AND (expires IS NULL OR expires > ?)",
                          (now + float(expires_in), token_id, now)).rowcount == 0:
                raise NotFound(f"no valid token with id {token_id!r} to renew")
        return self.get_token(token_id)

    def authenticate(self, token: str) -> tuple[Identity, TokenInfo]:
        """The identity a token string stands for, and the token; :class:`AccessDenied` if the
        token is malformed, unknown, revoked or expired (one message for all: no oracle)."""
        token_id = parse_token(token)
        with self._tx() as db:
            row = db.execute("SELECT * FROM tokens WHERE id=?", (token_id,)).fetchone()
        if row is None or not sha256_matches(token.strip(), row["sha256"]) or not _token(row).valid(self._clock.time()):
            raise AccessDenied("invalid, expired or revoked token")
        return self.get_identity(row["identity"]), _token(row)

    def nats_users(self, now: float | None = None) -> list[tuple[TokenInfo, str]]:
        """Every token valid at ``now`` with its bcrypt hash (for the broker's config)."""
        now = self._clock.time() if now is None else now
        with self._tx() as db:
            rows = db.execute("SELECT * FROM tokens WHERE revoked IS NULL AND (expires IS NULL OR expires > ?) "
                              "ORDER BY id", (now,)).fetchall()
        return [(_token(r), r["bcrypt"]) for r in rows]

    def next_expiry(self, now: float | None = None) -> float | None:
        """When the next still-valid token expires (None if none will)."""
        now = self._clock.time() if now is None else now
        with self._tx() as db:
            row = db.execute("SELECT MIN(expires) FROM tokens WHERE revoked IS NULL AND expires > ?", (now,)).fetchone()
        return row[0]

    # --- topics ------------------------------------------------------------------------------

    def register_topic(self, name: str, owner: str, description: str = "") -> TopicRecord:
        """Record ``owner`` as the owner of topic ``name`` and everything below it.

        :class:`AlreadyExists` if it, a topic above it or one below it is registered already
        (their streams would overlap); :class:`ConfigError` for the bare namespace root.
        """
        validate_topic(name)
        if name == NAMESPACE_ROOT:
            raise ConfigError(f"name: {NAMESPACE_ROOT!r} holds every user's namespace and cannot be registered")
        rec = TopicRecord(name, owner, description)
        with self._tx(change=True) as db:
            if db.execute("SELECT 1 FROM identities WHERE name=?", (owner,)).fetchone() is None:
                raise NotFound(f"owner: no identity named {owner!r}")
            for (other,) in db.execute("SELECT name FROM topics"):
                if _covers(other, name) or _covers(name, other):
                    what = "already registered" if other == name else f"overlaps registered topic {other!r}"
                    raise AlreadyExists(f"topic {name!r} {what}")
            before = _read_snapshot(db)
            db.execute("INSERT INTO topics VALUES (?,?,?,?)", (name, owner, description, rec.created))
            _keep_enforceable(db, before, (owner,), f"register topic {name!r}")
        return rec

    def get_topic(self, name: str) -> TopicRecord:
        """The registration of topic ``name``; :class:`NotFound`."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM topics WHERE name=?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"topic {name!r} is not registered")
        return TopicRecord(row["name"], row["owner"], row["description"], row["created"])

    def list_topics(self) -> list[TopicRecord]:
        """Every registered topic, by name."""
        with self._tx() as db:
            rows = db.execute("SELECT * FROM topics ORDER BY name").fetchall()
        return [TopicRecord(r["name"], r["owner"], r["description"], r["created"]) for r in rows]

    def unregister_topic(self, name: str) -> None:
        """Forget topic ``name`` and every grant whose target lies in it (so that a later owner
        does not inherit them)."""
        with self._tx(change=True) as db:
            if db.execute("DELETE FROM topics WHERE name=?", (name,)).rowcount == 0:
                raise NotFound(f"topic {name!r} is not registered")
            self._delete_grants_under(db, name)

    @staticmethod
    def _delete_grants_under(db: sqlite3.Connection, root: str) -> None:
        for (target,) in db.execute("SELECT DISTINCT target FROM grants").fetchall():
            if _covers(root, literal_prefix(target)):
                db.execute("DELETE FROM grants WHERE target=?", (target,))

    # --- grants ------------------------------------------------------------------------------

    def grant(self, target: str, grantee: str, rights: Iterable[Right | str], *, to_group: bool = False,
              granted_by: str = "") -> Grant:
        """Add ``rights`` for ``grantee`` (an identity, or a group) on ``target`` (a topic or an
        enforceable pattern, see :func:`~evfabric.access.model.validate_target`); rights already
        held are kept. Returns the grant as it now is."""
        validate_target(target)
        try:
            wanted = {Right(r) for r in rights}
        except ValueError:
            raise ConfigError(f"rights: each must be 'publish' or 'subscribe', got {list(rights)!r}") from None
        if not wanted:
            raise ConfigError("rights: give at least one of 'publish', 'subscribe'")
        table = "groups" if to_group else "identities"
        with self._tx(change=True) as db:
            if db.execute(f"SELECT 1 FROM {table} WHERE name=?", (grantee,)).fetchone() is None:
                raise NotFound(f"grantee: no {'group' if to_group else 'identity'} named {grantee!r}")
            before = _read_snapshot(db)
            row = db.execute("SELECT * FROM grants WHERE target=? AND grantee=? AND to_group=?",
                             (target, grantee, int(to_group))).fetchone()
            have = _grant(row).rights if row is not None else frozenset()
            rights_now = have | wanted
            db.execute("INSERT OR REPLACE INTO grants VALUES (?,?,?,?,?,?,?)",
                       (target, grantee, int(to_group), int(Right.PUBLISH in rights_now),
                        int(Right.SUBSCRIBE in rights_now), granted_by or (row["granted_by"] if row else ""),
                        row["created"] if row else time.time()))
            names = before.groups[grantee].members if to_group else (grantee,)
            _keep_enforceable(db, before, names, f"grant {target!r}")
        return self.get_grant(target, grantee, to_group=to_group)

    def get_grant(self, target: str, grantee: str, *, to_group: bool = False) -> Grant:
        """The grant on exactly ``target`` to ``grantee``; :class:`NotFound`."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM grants WHERE target=? AND grantee=? AND to_group=?",
                             (target, grantee, int(to_group))).fetchone()
        if row is None:
            raise NotFound(f"no grant on {target!r} to {'group' if to_group else 'identity'} {grantee!r}")
        return _grant(row)

    def revoke(self, target: str, grantee: str, rights: Iterable[Right | str] | None = None, *,
               to_group: bool = False) -> Grant | None:
        """Remove ``rights`` (None = all) from the grant on ``target`` to ``grantee``; returns what
        is left, or None when nothing is. :class:`NotFound` if there was no such grant."""
        current = self.get_grant(target, grantee, to_group=to_group)
        try:
            dropping = set(Right) if rights is None else {Right(r) for r in rights}
        except ValueError:
            raise ConfigError("rights: each must be 'publish' or 'subscribe'") from None
        left = current.rights - dropping
        with self._tx(change=True) as db:
            if left:
                db.execute("UPDATE grants SET publish=?, subscribe=? WHERE target=? AND grantee=? AND to_group=?",
                           (int(Right.PUBLISH in left), int(Right.SUBSCRIBE in left), target, grantee, int(to_group)))
            else:
                db.execute("DELETE FROM grants WHERE target=? AND grantee=? AND to_group=?",
                           (target, grantee, int(to_group)))
        return self.get_grant(target, grantee, to_group=to_group) if left else None

    def list_grants(self) -> list[Grant]:
        """Every grant, by target then grantee."""
        with self._tx() as db:
            return [_grant(r) for r in db.execute("SELECT * FROM grants ORDER BY target, to_group, grantee")]

    # --- consumers (made by the topic service) -----------------------------------------------

    def record_consumer(self, stream: str, name: str, identity: str) -> None:
        """Let ``identity`` use JetStream consumer ``name`` of ``stream`` (pull, ack, info, delete)."""
        with self._tx(change=True) as db:
            if db.execute("SELECT 1 FROM identities WHERE name=?", (identity,)).fetchone() is None:
                raise NotFound(f"no identity named {identity!r}")
            db.execute("INSERT OR IGNORE INTO consumers VALUES (?,?,?,?)", (stream, name, identity, time.time()))

    def forget_consumers(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Drop the records of these ``(stream, consumer)`` pairs (for every identity); how many went."""
        pairs = list(pairs)
        if not pairs:
            return 0
        with self._tx(change=True) as db:
            return sum(db.execute("DELETE FROM consumers WHERE stream=? AND name=?", p).rowcount for p in pairs)

    def list_consumers(self, identity: str | None = None) -> list[tuple[str, str, str]]:
        """Recorded ``(stream, consumer, identity)`` rows, of one identity or all."""
        with self._tx() as db:
            if identity is None:
                rows = db.execute("SELECT stream, name, identity FROM consumers ORDER BY stream, name").fetchall()
            else:
                rows = db.execute("SELECT stream, name, identity FROM consumers WHERE identity=? "
                                  "ORDER BY stream, name", (identity,)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # --- everything at once ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A consistent copy of everything but token hashes (for policy decisions and config)."""
        with self._tx() as db:
            return _read_snapshot(db)


def _read_snapshot(db: sqlite3.Connection) -> Snapshot:
    idents = {r["name"]: _identity(r) for r in db.execute("SELECT * FROM identities")}
    members: dict[str, list[str]] = {}
    for r in db.execute("SELECT grp, name FROM members ORDER BY grp, name"):
        members.setdefault(r["grp"], []).append(r["name"])
    groups = {r["name"]: Group(r["name"], tuple(members.get(r["name"], ())), r["description"], r["created"])
              for r in db.execute("SELECT * FROM groups")}
    topics = {r["name"]: TopicRecord(r["name"], r["owner"], r["description"], r["created"])
              for r in db.execute("SELECT * FROM topics")}
    grants = [_grant(r) for r in db.execute("SELECT * FROM grants ORDER BY target, to_group, grantee")]
    consumers = [(r[0], r[1], r[2]) for r in
                 db.execute("SELECT stream, name, identity FROM consumers ORDER BY stream, name")]
    version = int(db.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0])
    return Snapshot(idents, groups, topics, grants, version, consumers)


def _keep_enforceable(db: sqlite3.Connection, before: Snapshot, names: Iterable[str], what: str) -> None:
    """Refuse (:class:`ConfigError`, the transaction rolls back) a change that gives one of
    ``names`` subscribe rights the broker cannot enforce together exactly
    (:func:`~evfabric.access.policy.subscribe_conflicts`: ``exp.?`` beside ``exp.a``)."""
    after = _read_snapshot(db)
    for name in names:
        had = set(subscribe_conflicts(before, name))
        new = [c for c in subscribe_conflicts(after, name) if c not in had]
        if new:
            one, deeper = new[0]
            wide = one[:-1] + "*"
            raise ConfigError(f"{what}: {name!r} would read {one!r} beside {deeper!r}, below its last level; the broker "
                              f"cannot keep {one!r} to one level then (grant {wide!r}, or the topics one by one)")
