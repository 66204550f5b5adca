"""The core: events, topics and patterns, the pattern index, codecs, clocks, filters, errors."""

from evfabric.core.clocks import LamportClock, VectorClock
from evfabric.core.errors import *  # noqa: F403
from evfabric.core.event import BEST_EFFORT, RELIABLE, Event, check_body, make_event, new_id
from evfabric.core.filters import Filter
from evfabric.core.index import PatternIndex
from evfabric.core.topics import Pattern, check_publishable, is_reserved, reference_match, validate_topic

__all__ = [
    "BEST_EFFORT",
    "RELIABLE",
    "Event",
    "Filter",
    "LamportClock",
    "Pattern",
    "PatternIndex",
    "VectorClock",
    "check_body",
    "check_publishable",
    "is_reserved",
    "make_event",
    "new_id",
    "reference_match",
    "validate_topic",
]
