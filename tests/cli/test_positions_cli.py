"""`evfabric sub --start SEQ:INDEX` and `topic describe` in events (docs/wire.md section 8)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import evfabric
from conftest import cli

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def test_sub_from_a_position_and_describe_in_events(broker: Any) -> None:
    url = broker.url
    with evfabric.connect(url, source="p") as c:
        c.create_topic("cpos")
        c.publish_many("cpos.x", [{"i": i} for i in range(10)], delivery="reliable")
        c.flush(timeout=10)
        seq = c.describe_topic("cpos").first_seq
    r = cli("sub", "cpos.*", "--start", f"{seq}:6", "--until-end", "--json", "--url", url)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["body"]["i"] for d in lines] == [6, 7, 8, 9]
    assert [d["position"] for d in lines] == [f"{seq}:{i}" for i in range(6, 10)]  # readable, not packed
    assert not any("packed_position" in d for d in lines)
    r = cli("topic", "describe", "cpos", "--url", url)
    d = json.loads(r.stdout)
    assert (d["messages"], d["events"]) == (1, 10), d
    r = cli("sub", "cpos.*", "--start", f"{seq}:10", "--until-end", "--url", url)
    assert r.returncode != 0 and "holds 10 events" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
