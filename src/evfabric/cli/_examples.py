"""An example for the ``--help`` of every command that does not show one in its own help text.

Keys are command paths (``"topic create"``); :func:`apply` appends ``Example:`` and the lines to
the command's help once every sub-command module is registered. A test walks every command's
``--help`` and fails on one without an example, so a new command brings its example along (in
its own help, or here).
"""

from __future__ import annotations

import inspect

import typer

__all__ = ["EXAMPLES", "apply"]

EXAMPLES: dict[str, str] = {
    "bench-report": "evfabric bench-report --quick",
    "serve": "evfabric serve                      # 127.0.0.1:4222, web service on :8080\n"
             "evfabric serve --peers 3 -p 4222    # a local 3-server cluster",
    "sim": "evfabric sim carwash --mode conservative --workers 2",
    "demo": "evfabric demo --steps 20",
    "demo htc": "evfabric demo htc --tasks 10000 --workers 20",
    "user": "evfabric user create alice --token",
    "user create": "evfabric user create alice --token         # prints alice's token once",
    "user list": "evfabric user list --json",
    "user delete": "evfabric user delete alice",
    "user admin": "evfabric user admin alice",
    "group": "evfabric group create lab && evfabric group add lab alice",
    "group create": "evfabric group create lab",
    "group add": "evfabric group add lab alice",
    "group remove": "evfabric group remove lab alice",
    "group list": "evfabric group list",
    "group delete": "evfabric group delete lab",
    "token": "evfabric token issue alice --expires-in 3600",
    "token issue": "evfabric token issue alice --expires-in 3600",
    "token list": "evfabric token list",
    "token revoke": "evfabric token revoke 0123456789abcdef",
    "token expire": "evfabric token expire 0123456789abcdef",
    "grant": "evfabric grant register experiments --owner alice\n"
             "evfabric grant add 'experiments.?' bob --subscribe",
    "grant register": "evfabric grant register experiments --owner alice",
    "grant unregister": "evfabric grant unregister experiments",
    "grant topics": "evfabric grant topics",
    "grant add": "evfabric grant add 'experiments.?' bob --subscribe",
    "grant revoke": "evfabric grant revoke 'experiments.?' bob",
    "grant list": "evfabric grant list --json",
    "grant who": "evfabric grant who experiments",
    "grant check": "evfabric grant check bob subscribe experiments.run1",
    "context": "evfabric context add lab --url nats://lab1:4222 --token \"$TOKEN\" --select",
    "trigger": "evfabric trigger create archive --pattern 'runs.*.done' --shell ./archive.sh",
    "trigger create": "evfabric trigger create archive --pattern 'runs.*.done' --shell ./archive.sh --retries 5\n"
                      "evfabric trigger create thumbs --pattern 'lab.images.*' --python mylab.actions:thumb",
    "trigger update": "evfabric trigger update archive --retries 10",
    "trigger list": "evfabric trigger list",
    "trigger describe": "evfabric trigger describe archive",
    "trigger logs": "evfabric trigger logs archive",
    "trigger enable": "evfabric trigger enable archive",
    "trigger disable": "evfabric trigger disable archive",
    "trigger delete": "evfabric trigger delete archive",
    "trigger run": "evfabric trigger run               # one runner replica, until Ctrl-C",
}


def _with_example(help_text: str | None, path: str) -> str | None:
    text = help_text or ""
    if "Example" in text or path not in EXAMPLES:
        return help_text
    lines = "\n".join(f"    {line}" for line in EXAMPLES[path].splitlines())
    return f"{text.rstrip()}\n\nExample:\n\n{lines}\n"


def _name(info: typer.models.CommandInfo) -> str:
    if info.name:
        return info.name
    assert info.callback is not None
    return info.callback.__name__.replace("_", "-")


def _apply(app: typer.Typer, prefix: str) -> None:
    for cmd in app.registered_commands:
        path = f"{prefix}{_name(cmd)}"
        cmd.help = _with_example(cmd.help or inspect.getdoc(cmd.callback), path)
    cb = app.registered_callback
    if cb is not None and prefix:
        cb.help = _with_example(cb.help or inspect.getdoc(cb.callback) or app.info.help, prefix.strip())
    elif prefix:
        app.info.help = _with_example(app.info.help, prefix.strip())
    for group in app.registered_groups:
        assert group.typer_instance is not None
        name = group.name or group.typer_instance.info.name
        _apply(group.typer_instance, f"{prefix}{name} ")


def apply(app: typer.Typer) -> None:
    """Append the examples to the help of ``app``'s commands and groups (see module doc)."""
    _apply(app, "")
