"""Access control: identities, tokens, topic ownership and grants, enforced by the broker.

* :class:`AccessStore` keeps identities, groups, tokens (hashed), registered topics and grants
  in ``<data dir>/access.db``;
* :mod:`evfabric.access.policy` decides who may do what, and what NATS permissions follow;
* :class:`AccessControl` turns the store into the broker's ``authorization`` config and
  reloads the running server whenever the store changes or a token expires;
* :mod:`evfabric.access.api` is the REST API (``evfabric serve`` mounts it);
* :func:`nats_options` gives the ``nats.connect`` / ``evfabric.connect`` keywords for a token.

See ``docs/access.md``.
"""

from __future__ import annotations

from evfabric.access.client import nats_options
from evfabric.access.model import Grant, Group, Identity, IdentityKind, IssuedToken, Right, TokenInfo, TopicRecord
from evfabric.access.store import AccessStore

__all__ = [
    "AccessControl",
    "AccessStore",
    "Grant",
    "Group",
    "Identity",
    "IdentityKind",
    "IssuedToken",
    "Right",
    "TokenInfo",
    "TopicRecord",
    "nats_options",
]


def __getattr__(name: str) -> object:
    # the broker-facing part imports the server launcher: load it only when asked for
    if name == "AccessControl":
        from evfabric.access.control import AccessControl

        return AccessControl
    raise AttributeError(name)
