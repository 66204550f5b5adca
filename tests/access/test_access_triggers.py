"""Triggers under access control: each trigger consumes as its run_as identity, so the broker
grants it exactly that identity's rights (a trigger cannot read what its identity may not)."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

import evfabric
from evfabric.access.internal import identity_token, service_url
from evfabric.testing import wait_until
from evfabric.triggers import RunnerThread, Triggers
from evfabric.triggers.signing import TriggerKey

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

SEEN: dict[str, list[int]] = {"alice": [], "bob": []}


def act_for_alice(event: Any) -> None:
    SEEN["alice"].append(event.body["i"])


def act_for_bob(event: Any) -> None:
    SEEN["bob"].append(event.body["i"])


def test_a_trigger_reads_only_what_its_identity_may(guarded: Any) -> None:
    store, server = guarded.store, guarded.server
    store.register_topic("runs", "alice")
    alice_tok, root_tok = store.issue_token("alice").secret, store.issue_token("root").secret
    runner_url = service_url(server.url, server.data_dir)  # issues evfabric-serve's session token
    key = TriggerKey.in_dir(server.data_dir)
    guarded.control.reload()  # returns once the broker admits the new tokens
    runner = RunnerThread(runner_url, credentials=partial(identity_token, server.data_dir), key=key,
                          idle_timeout=0.3, retry_every=0.5)
    try:
        with evfabric.connect(server.url, token=alice_tok, auto_topics=False) as alice, \
                evfabric.connect(server.url, token=root_tok) as root:
            alice.create_topic("runs")
            admin = Triggers(root, key=key)  # the key holder signs
            admin.create("as-alice", "runs.*", "test_access_triggers:act_for_alice", run_as="alice")
            admin.create("as-bob", "runs.*", "test_access_triggers:act_for_bob", run_as="bob", start="earliest")
            assert wait_until(lambda: "as-alice" in runner.status())
            alice.publish_many("runs.r1", [{"i": i} for i in range(5)], delivery="reliable")
            alice.flush()
            assert wait_until(lambda: sorted(SEEN["alice"]) == [0, 1, 2, 3, 4])
            # bob may not read runs: the broker refused his trigger's consumer (the runner records
            # that it could not start, and retries), so it never ran
            assert wait_until(lambda: "could not start" in runner.runner.failures().get("as-bob", "")), \
                runner.runner.failures()
            assert "as-bob" not in runner.status() and SEEN["bob"] == []
            # once alice shares the topic with bob, the runner's next retry starts his trigger
            store.grant("runs", "bob", ["subscribe"])
            assert wait_until(lambda: sorted(SEEN["bob"]) == [0, 1, 2, 3, 4])
    finally:
        runner.stop()
