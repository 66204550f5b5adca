"""Topic names, patterns, and the pattern index against the reference matcher."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evfabric.core.errors import InvalidPattern, InvalidTopic, ReservedTopic
from evfabric.core.index import PatternIndex
from evfabric.core.topics import Pattern, check_publishable, reference_match, validate_topic


@pytest.mark.parametrize("topic", ["a", "functions.signals.iteration", "A-b_9.x", "cca.topic.created"])
def test_valid_topics(topic):
    assert validate_topic(topic) == topic


@pytest.mark.parametrize(
    "topic, words",
    [
        ("", "empty"),
        ("a..b", "empty segment at position 1"),
        (".a", "empty segment at position 0"),
        ("a.", "empty segment"),
        ("a.b c", "' '"),
        ("a.*", "wildcards"),
        ("a.é", "'é'"),
        (42, "must be a str"),
        ("x" * 2000, "characters long"),
    ],
)
def test_invalid_topics_say_why(topic, words):
    with pytest.raises(InvalidTopic, match=None) as err:
        validate_topic(topic)
    assert words in str(err.value)


def test_reserved_group_refused_for_publish():
    with pytest.raises(ReservedTopic, match="reserved 'cca'"):
        check_publishable("cca.anything")
    assert check_publishable("ccax.fine") == "ccax.fine"


@pytest.mark.parametrize(
    "pattern, topic, expected",
    [
        ("functions.signals.*", "functions.signals.iteration", True),
        ("functions.signals.*", "functions.signals.currentStepDone.time", True),
        ("functions.signals.?", "functions.signals.iteration", True),
        ("functions.signals.?", "functions.signals.currentStepDone.time", False),
        ("*.signals.*", "functions.signals.iteration", True),
        ("*.signals.*", "signals.iteration", False),
        ("*.signals.*", "a.b.signals.c.d", True),
        ("*.signals.*", "a.signals", False),
        ("a.*.c", "a.c", False),
        ("a.*.c", "a.b.b.c", True),
        ("?", "a", True),
        ("?", "a.b", False),
        ("*", "cca.topic.created", False),
        ("cca.*", "cca.topic.created", True),
    ],
)
def test_cca_wildcard_semantics(pattern, topic, expected):
    assert Pattern(pattern).matches(topic) is expected
    assert reference_match(pattern, topic) is expected
    ix = PatternIndex()
    ix.add(pattern, "x")
    assert (ix.match(topic) == ("x",)) is expected


@pytest.mark.parametrize("bad", ["", "a..b", "a.**", "a.b?", "a.*x", "a b"])
def test_invalid_patterns(bad):
    with pytest.raises(InvalidPattern):
        Pattern(bad)


def test_index_order_remove_and_prune():
    ix = PatternIndex()
    h1 = ix.add("a.*", 1)
    h2 = ix.add("a.?", 2)
    h3 = ix.add("a.b", 3)
    assert ix.match("a.b") == (1, 2, 3)
    assert ix.remove("a.?", h2) is True
    assert ix.remove("a.?", h2) is False
    assert ix.match("a.b") == (1, 3)
    ix.remove("a.*", h1)
    ix.remove("a.b", h3)
    assert len(ix) == 0 and ix._root.empty()


SEGS = st.sampled_from(["a", "b", "c", "cca", "signals"])
TOPICS = st.lists(SEGS, min_size=1, max_size=6).map(".".join)
PATTERNS = st.lists(st.one_of(SEGS, st.sampled_from(["?", "*"])), min_size=1, max_size=6).map(".".join)


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(PATTERNS, min_size=1, max_size=12), topics=st.lists(TOPICS, min_size=1, max_size=12))
def test_index_agrees_with_reference(patterns, topics):
    ix = PatternIndex()
    for i, p in enumerate(patterns):
        ix.add(p, i)
    for t in topics:
        expected = tuple(i for i, p in enumerate(patterns) if reference_match(p, t))
        assert ix.match(t) == expected
        assert ix.match(t) == expected  # cached path
        assert all(Pattern(patterns[i]).matches(t) for i in expected)


@settings(max_examples=100, deadline=None)
@given(patterns=st.lists(PATTERNS, min_size=2, max_size=10), data=st.data())
def test_index_after_removals_agrees(patterns, data):
    ix = PatternIndex()
    handles = [ix.add(p, i) for i, p in enumerate(patterns)]
    gone = data.draw(st.sets(st.integers(0, len(patterns) - 1)))
    for i in gone:
        assert ix.remove(patterns[i], handles[i])
    t = data.draw(TOPICS)
    expected = tuple(i for i, p in enumerate(patterns) if i not in gone and reference_match(p, t))
    assert ix.match(t) == expected


def test_index_says_whether_anyone_watches_the_reserved_group():
    """The service builds framework events only when a pattern can match them (``cca...``)."""
    idx: PatternIndex[str] = PatternIndex()
    h = idx.add(Pattern("*"), "everything")  # a leading wildcard does not reach cca topics
    assert not idx.watches_reserved() and idx.match("cca.subscription.added") == ()
    c = idx.add(Pattern("cca.*"), "framework")
    assert idx.watches_reserved() and idx.match("cca.subscription.added") == ("framework",)
    idx.remove(Pattern("cca.*"), c)
    assert not idx.watches_reserved()
    idx.remove(Pattern("*"), h)
