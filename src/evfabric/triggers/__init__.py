"""Triggers: actions that run on matching events, highly available and autoscaling (Octopus).

    from evfabric.triggers import Triggers, TriggerRunner
    admin = Triggers(evfabric.connect(url))
    admin.create("thumbnail", "lab.images.*", "mylab.actions:make_thumbnail",
                 filter='body.size > 1000', batch_size=10, batch_window=0.5, max_concurrency=16)
    # elsewhere, as many replicas as you like:  evfabric trigger run --url nats://...
"""

from evfabric.triggers.actions import ActionFailed, resolve_action
from evfabric.triggers.executor import Invocation, TriggerExecutor
from evfabric.triggers.manager import TriggerManager, Triggers, make_spec
from evfabric.triggers.runner import RunnerThread, TriggerRunner, group_name
from evfabric.triggers.spec import ActionSpec, TriggerSpec, validate_spec

__all__ = [
    "ActionFailed",
    "ActionSpec",
    "Invocation",
    "RunnerThread",
    "TriggerExecutor",
    "TriggerManager",
    "TriggerRunner",
    "TriggerSpec",
    "Triggers",
    "group_name",
    "make_spec",
    "resolve_action",
    "validate_spec",
]
