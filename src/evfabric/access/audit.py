"""The audit trail of administrators' direct JetStream changes.

Administrators hold the JetStream API (docs/security.md): the broker cannot stop one from
giving a stream ``republish`` into ``evf.alice.>`` or a consumer a ``deliver_subject`` there,
which delivers events under alice's publisher token, or from reading through a ``mirror``.
Publishing in another's name directly is refused (:func:`~evfabric.access.policy.admin_permissions`);
these indirect ways are recorded instead: nats-server publishes every JetStream API request as
an ``api_audit`` advisory on ``$JS.EVENT.ADVISORY.API``, with the authenticated user (a token
id), and :class:`JetStreamAudit` (run by the topic service) logs each stream or consumer
create, update or delete that did not come from ``evfabric serve``'s own service identity, naming
the identity, the API subject and the request, and keeps the last :data:`KEPT` of them.
"""

from __future__ import annotations

import collections
import json
import logging
from dataclasses import dataclass
from typing import Any

from evfabric.access.internal import SERVICE_IDENTITY
from evfabric.access.store import AccessStore
from evfabric.core.errors import NotFound

__all__ = ["ADVISORY_SUBJECT", "KEPT", "AuditEntry", "JetStreamAudit"]

ADVISORY_SUBJECT = "$JS.EVENT.ADVISORY.API"
KEPT = 1000
_CHANGES = ("$JS.API.STREAM.CREATE.", "$JS.API.STREAM.UPDATE.", "$JS.API.STREAM.DELETE.",
            "$JS.API.CONSUMER.CREATE.", "$JS.API.CONSUMER.DURABLE.CREATE.", "$JS.API.CONSUMER.DELETE.")
log = logging.getLogger("evfabric.access.audit")


@dataclass(frozen=True)
class AuditEntry:
    """One JetStream change: who (identity, token id), the API subject, the request (JSON text)."""

    time: str
    identity: str
    token_id: str
    subject: str
    request: str


class JetStreamAudit:
    """Records the JetStream changes of every identity but the service's own."""

    def __init__(self, store: AccessStore) -> None:
        self.store = store
        self.entries: collections.deque[AuditEntry] = collections.deque(maxlen=KEPT)

    async def start(self, nc: Any) -> None:
        """Subscribe to the API advisories on ``nc`` (an administrative connection)."""
        await nc.subscribe(ADVISORY_SUBJECT, cb=self._on_advisory)

    async def _on_advisory(self, msg: Any) -> None:
        try:
            adv = json.loads(msg.data)
        except ValueError:
            return
        entry = self.entry_of(adv)
        if entry is not None:
            self.entries.append(entry)
            log.warning("audit: %r (token %s) called %s with %s", entry.identity, entry.token_id, entry.subject,
                        entry.request[:2000])

    def entry_of(self, adv: dict[str, Any]) -> AuditEntry | None:
        """The entry of one ``api_audit`` advisory, or None when it is not a change to record."""
        subject = str(adv.get("subject") or "")
        if not subject.startswith(_CHANGES):
            return None
        token_id = str((adv.get("client") or {}).get("user") or "")
        try:
            identity = self.store.get_token(token_id).identity
        except NotFound:
            identity = "?"
        if identity == SERVICE_IDENTITY:
            return None
        return AuditEntry(str(adv.get("timestamp") or ""), identity, token_id, subject, str(adv.get("request") or ""))
