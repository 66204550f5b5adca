"""What a client needs to connect with a token: ``nats.connect(url, **nats_options(token))``
(defined in :mod:`evfabric.core.credentials`, where the fabric client finds it too)."""

from __future__ import annotations

from evfabric.core.credentials import inbox_prefix, nats_options

__all__ = ["inbox_prefix", "nats_options"]
