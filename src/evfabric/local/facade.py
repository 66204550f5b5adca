"""A thin facade with the CCA event service's own names, so spec-shaped code reads naturally.

    services = CCAEventService(EventService())
    topic = services.publisher.createTopic("functions.signals.iteration")
    topic.sendEvent({"source": "solver"}, {"i": 1})     # header map, body map
    sub = services.subscriber.getSubscription("functions.signals.*")
    sub.registerEventListener("printer", MyListener())  # MyListener.processEvent(topicName, event)
    services.subscriber.processEvents()

Everything delegates to :class:`~evfabric.local.service.EventService`; nothing here has
semantics of its own.
"""

from __future__ import annotations

from typing import Any, Protocol

from evfabric.core.errors import NotFound
from evfabric.core.event import Body, Event
from evfabric.core.topics import check_publishable
from evfabric.local.service import EventService
from evfabric.local.subscription import Subscription as _Subscription

__all__ = [
    "CCAEventService",
    "EventListener",
    "PublisherEventService",
    "SubscriberEventService",
    "Subscription",
    "Topic",
]


class EventListener(Protocol):
    """CCA's listener interface."""

    def processEvent(self, topicName: str, theEvent: Event) -> None:
        ...


class Topic:
    """A topic a publisher sends on (CCA ``Topic``)."""

    def __init__(self, service: EventService, name: str) -> None:
        self._service = service
        self._name = name

    def getTopicName(self) -> str:
        return self._name

    def sendEvent(self, header: dict[str, Any] | None = None, body: Body | None = None) -> Event:
        """Publish an event: ``header`` holds header fields (``source``, ``type``, extras...)."""
        return self._service.publish(self._name, body, **(header or {}))


class Subscription:
    """A subscription handle with keyed listeners (CCA ``Subscription``)."""

    def __init__(self, inner: _Subscription) -> None:
        self._inner = inner
        self._keyed: dict[str, Any] = {}

    def getSubscriptionName(self) -> str:
        return self._inner.pattern.text

    def registerEventListener(self, listenerKey: str, theListener: EventListener) -> None:
        """Call ``theListener.processEvent(topic, event)`` for each matching event."""
        self.unregisterEventListener(listenerKey)

        def adapter(event: Event) -> None:
            theListener.processEvent(event.topic, event)

        self._keyed[listenerKey] = adapter
        self._inner.add_listener(adapter)

    def unregisterEventListener(self, listenerKey: str) -> None:
        adapter = self._keyed.pop(listenerKey, None)
        if adapter is not None:
            self._inner.remove_listener(adapter)


class PublisherEventService:
    """CCA ``PublisherEventService``."""

    def __init__(self, service: EventService) -> None:
        self._service = service
        self._topics: dict[str, Topic] = {}

    def createTopic(self, topicName: str) -> Topic:
        check_publishable(topicName)
        return self._topics.setdefault(topicName, Topic(self._service, topicName))

    def getTopic(self, topicName: str) -> Topic:
        """The topic, created on first use."""
        return self.createTopic(topicName)

    def existsTopic(self, topicName: str) -> bool:
        return topicName in self._topics or topicName in self._service.topics

    def releaseTopic(self, topicName: str) -> None:
        if self._topics.pop(topicName, None) is None:
            raise NotFound(f"topic {topicName!r} was not created through this publisher")


class SubscriberEventService:
    """CCA ``SubscriberEventService``."""

    def __init__(self, service: EventService) -> None:
        self._service = service
        self._subs: dict[str, Subscription] = {}

    def getSubscription(self, topicName: str) -> Subscription:
        """A subscription to ``topicName`` (a pattern with ``?`` and ``*``), made on first use."""
        sub = self._subs.get(topicName)
        if sub is None:
            sub = self._subs[topicName] = Subscription(self._service.subscribe(topicName))
        return sub

    def releaseSubscription(self, theSubscription: Subscription) -> None:
        self._subs.pop(theSubscription.getSubscriptionName(), None)
        theSubscription._inner.unsubscribe()

    def processEvents(self) -> int:
        """Flush queued events to listeners; return the listener calls made."""
        return self._service.process_events()


class CCAEventService:
    """Both CCA interfaces over one :class:`EventService`."""

    def __init__(self, service: EventService | None = None) -> None:
        self.service = service or EventService()
        self.publisher = PublisherEventService(self.service)
        self.subscriber = SubscriberEventService(self.service)
