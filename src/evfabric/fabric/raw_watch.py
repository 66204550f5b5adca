"""Best-effort subscriptions read the raw topics below their pattern, including later ones.

A raw topic (docs/wire.md 5) stores what foreign clients publish on its own subjects
(``lab.probe``, ``lab.probe.>``). A best-effort ``lab.*`` reads those subjects too, as a
reliable one reads the topic's stream. :class:`RawTopicWatch` finds them: one core
subscription per client on the catalog's ``r.`` records (``$KV.EVF_TOPICS.r.>``), made before the
catalog is listed, so that a raw topic declared at any time after the subscription, or while it
is being made, is followed from then on. A topic deleted later is not unfollowed (its subjects
then carry nothing evfabric stores); records written while the client was disconnected are not
seen (the next subscription lists them).

Only without access control: under it foreign subjects are closed (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext

from evfabric.fabric.catalog import RECORD_HEADER, catalog_keys, catalog_subject
from evfabric.fabric.subjects import intersect, raw_subjects
from evfabric.wire.subject import pattern_tokens

if TYPE_CHECKING:
    from evfabric.fabric.subscription import FabricSubscription

__all__ = ["RawTopicWatch"]

#: feed a subscription from one foreign subject (``Receiving.feed`` with ``raw=True``)
FeedRaw = Callable[["FabricSubscription", str], Awaitable[None]]

_PREFIX = len(catalog_subject("r", ""))


class RawTopicWatch:
    """The raw topics each following best-effort subscription reads, kept up to date."""

    def __init__(self, nc: NATS, js: JetStreamContext, feed: FeedRaw) -> None:
        self._nc = nc
        self._js = js
        self._feed = feed
        self._nsub: NatsSubscription | None = None
        self.following: dict[FabricSubscription, set[str]] = {}  # sub -> foreign subjects it reads

    async def follow(self, sub: FabricSubscription, below: str) -> None:
        """Feed ``sub`` from the raw topics within its pattern strictly below ``below`` (its
        literal head; '' for all), now and whenever one is declared later."""
        if self._nsub is None:
            self._nsub = await self._nc.subscribe(catalog_subject("r", ">"), cb=self._on_record)
        self.following[sub] = set()
        for name in await catalog_keys(self._js, "r", below or None):
            await self._add(sub, name)

    def forget(self, sub: FabricSubscription) -> None:
        """``sub`` ended: follow nothing new for it."""
        self.following.pop(sub, None)

    async def _on_record(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if headers.get(RECORD_HEADER) != "1" or headers.get("KV-Operation") in ("DEL", "PURGE"):
            return  # not a record of ours (a server's answer sent here), or a deletion
        name = msg.subject[_PREFIX:]
        for sub in list(self.following):
            await self._add(sub, name)

    async def _add(self, sub: FabricSubscription, name: str) -> None:
        fed = self.following.get(sub)
        if fed is None or not sub.active:
            return
        foreign, exact = pattern_tokens(sub.pattern.text)
        for subject in raw_subjects(name):
            f = intersect(subject, foreign)
            if f is None or f in fed:
                continue
            fed.add(f)
            sub.exact = sub.exact and exact  # NATS wildcards are wider than '?': dispatch matches
            await self._feed(sub, f)
