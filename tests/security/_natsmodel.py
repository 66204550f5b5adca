"""A model of how nats-server applies a user's ``permissions`` to subscriptions and messages,
written from its source (``client.go``: ``canSubscribeInternal``, ``checkDenySub``) and checked
against a real server in ``test_grant_exactness``:

* a subscription subject is admitted when an allow rule matches it and no deny rule does, the
  subject's own ``*`` and ``>`` being taken as literal tokens (an allow ``a.*`` admits ``a.>``);
* an admitted subscription receives a message when its subject matches the message's, and no
  deny rule matches the message's subject (deny rules are applied per message).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from evfabric.access.policy import subject_matches


def _rules(perms: dict[str, Any], side: str, kind: str) -> list[str]:
    return list((perms.get(side) or {}).get(kind) or [])


@functools.lru_cache(maxsize=4096)
def subscriptions_reaching(subject: str) -> tuple[str, ...]:
    """The subscription subjects that match ``subject``: each token kept or ``*``, optionally cut
    by a ``>``; for ``evf.<publisher>.<partition>...`` subjects the publisher and partition are
    ``*`` (every generated subscribe rule has ``*`` there, so the literal forms add nothing)."""
    toks = subject.split(".")
    fixed = {1: "*", 2: "*"} if toks[0] == "evf" and len(toks) > 3 else {}
    choices = [(fixed[i],) if i in fixed else (t, "*") for i, t in enumerate(toks)]
    out: list[str] = []
    for masked in itertools.product(*choices):
        out.append(".".join(masked))
        out += [".".join([*masked[:i], ">"]) for i in range(len(toks))]
    return tuple(dict.fromkeys(out))


class NatsUser:
    """One user's ``permissions`` as nats-server applies them."""

    def __init__(self, perms: dict[str, Any]) -> None:
        self.sub_allow, self.sub_deny = _rules(perms, "subscribe", "allow"), _rules(perms, "subscribe", "deny")
        self.pub_allow, self.pub_deny = _rules(perms, "publish", "allow"), _rules(perms, "publish", "deny")
        self._admitted: dict[str, bool] = {}

    def admitted(self, subscription: str) -> bool:
        """Whether the server accepts ``SUB subscription`` (its wildcards as literal tokens)."""
        ok = self._admitted.get(subscription)
        if ok is None:
            ok = self._admitted[subscription] = (
                any(subject_matches(a, subscription) for a in self.sub_allow)
                and not any(subject_matches(d, subscription) for d in self.sub_deny))
        return ok

    def denied(self, subject: str) -> bool:
        return any(subject_matches(d, subject) for d in self.sub_deny)

    def delivered(self, subscription: str, subject: str) -> bool:
        """Whether a message on ``subject`` reaches this user through ``subscription``."""
        return self.admitted(subscription) and subject_matches(subscription, subject) and not self.denied(subject)

    def receivable(self, subject: str) -> bool:
        """Whether some subscription of this user receives a message on ``subject``."""
        return not self.denied(subject) and any(self.admitted(s) for s in subscriptions_reaching(subject))

    def publishable(self, subject: str) -> bool:
        """Whether the server lets this user publish on the literal ``subject``."""
        return (any(subject_matches(a, subject) for a in self.pub_allow)
                and not any(subject_matches(d, subject) for d in self.pub_deny))
