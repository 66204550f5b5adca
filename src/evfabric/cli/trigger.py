"""``evfabric trigger create|list|describe|update|enable|disable|delete|logs|run``.

Definitions written here are signed with the trigger key of the broker's data directory
(``-d``, default ``.evfabric/broker``) when that key is readable, i.e. by an administrator on
the broker's host; ``run`` verifies with the same key (or, on a broker without access control,
runs unsigned definitions with ``--accept-unsigned``). Ordinary users define triggers through
the web service (``POST /triggers``)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

DEFAULT_URL = os.environ.get("EVFABRIC_URL", "nats://127.0.0.1:4222")

trigger_app = typer.Typer(help="Triggers: actions that run on matching events.", no_args_is_help=True)
console = Console()

_URL = typer.Option(DEFAULT_URL, "--url", "-u", help="broker URL (env EVFABRIC_URL)")
DEFAULT_DATA_DIR = Path(".evfabric") / "broker"
_DATA_DIR = typer.Option(DEFAULT_DATA_DIR, "--data-dir", "-d",
                         help="the broker's data directory, whose trigger.key signs definitions (if readable)")


def _key(data_dir: Path) -> Any:
    """The trigger key of ``data_dir`` if there is one (never made here)."""
    from evfabric.triggers.signing import KEY_FILE, TriggerKey

    try:
        return TriggerKey.in_dir(data_dir) if (data_dir / KEY_FILE).is_file() else None
    except OSError:  # not readable: not this user's to sign with
        return None


def _action(python: str | None, shell: str | None, webhook: str | None, pass_batch: bool) -> dict[str, Any] | None:
    given = [(k, v) for k, v in (("python", python), ("shell", shell), ("webhook", webhook)) if v]
    if len(given) > 1:
        raise typer.BadParameter("give one action: --python, --shell or --webhook")
    if not given:
        return None
    kind, target = given[0]
    return {"kind": kind, "target": target, "pass_batch": pass_batch}


def _token_identity(data_dir: Path) -> str | None:
    """The identity of ``$EVFABRIC_TOKEN`` per the data directory's access store (None if unknown)."""
    import sqlite3

    from evfabric.access.store import DB_NAME, AccessStore
    from evfabric.core.errors import EvfabricError

    token = os.environ.get("EVFABRIC_TOKEN")
    if not token or not (data_dir / DB_NAME).is_file():
        return None
    try:
        return AccessStore(data_dir / DB_NAME).authenticate(token)[0].name
    except (EvfabricError, OSError, sqlite3.Error):
        return None


def _options(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _with_admin(url: str, fn: Any, data_dir: Path = DEFAULT_DATA_DIR) -> Any:
    from evfabric.core.errors import EvfabricError
    from evfabric.fabric.client import connect
    from evfabric.triggers import Triggers

    try:
        key = _key(data_dir)
        with connect(url, source="evfabric-cli") as client:
            return fn(Triggers(client, key=key))
    except EvfabricError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@trigger_app.command("create")
def create(
    name: str = typer.Argument(..., help="trigger name (letters, digits, _ and -)"),
    pattern: str = typer.Option(..., "--pattern", "-p", help="topic pattern (CCA wildcards ? and *)"),
    python: str = typer.Option(None, "--python", help="action: package.module:function"),
    shell: str = typer.Option(None, "--shell", help="action: a shell command (event JSON on stdin)"),
    webhook: str = typer.Option(None, "--webhook", help="action: POST the CloudEvent to this URL"),
    pass_batch: bool = typer.Option(False, "--pass-batch", help="python: call once per batch with a list"),
    filter: str = typer.Option(None, "--filter", "-f", help="CEL filter on the event"),
    batch_size: int = typer.Option(None, "--batch-size"),
    batch_window: float = typer.Option(None, "--batch-window", help="seconds"),
    start: str = typer.Option(None, "--start", help="latest, earliest or an ISO 8601 time"),
    timeout: float = typer.Option(None, "--timeout", help="seconds per invocation"),
    retries: int = typer.Option(None, "--retries"),
    backoff: float = typer.Option(None, "--backoff", help="seconds before the first retry"),
    min_concurrency: int = typer.Option(None, "--min-concurrency"),
    max_concurrency: int = typer.Option(None, "--max-concurrency"),
    disabled: bool = typer.Option(False, "--disabled", help="store it without running it"),
    run_as: str = typer.Option(None, "--run-as", help="the identity it acts as (default: the token's, "
                                                      "$EVFABRIC_TOKEN, when the data directory is readable)"),
    url: str = _URL,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Define a trigger; it is validated now (nothing imported) and runs on every runner replica.

    Example: evfabric trigger create thumbs --pattern 'lab.images.*' --python mylab.actions:thumb"""
    action = _action(python, shell, webhook, pass_batch)
    if action is None:
        raise typer.BadParameter("give an action: --python, --shell or --webhook")
    opts = _options(filter=filter, batch_size=batch_size, batch_window=batch_window, start=start, timeout=timeout,
                    retries=retries, backoff=backoff, min_concurrency=min_concurrency, max_concurrency=max_concurrency)
    if disabled:
        opts["enabled"] = False
    identity = run_as or _token_identity(data_dir)
    if identity:
        opts["run_as"] = identity
    spec = _with_admin(url, lambda t: t.create(name, pattern, action, **opts), data_dir)
    console.print(f"trigger [bold]{spec.name}[/bold] created on {spec.pattern!r}")


@trigger_app.command("update")
def update(
    name: str = typer.Argument(...),
    pattern: str = typer.Option(None, "--pattern", "-p"),
    python: str = typer.Option(None, "--python"),
    shell: str = typer.Option(None, "--shell"),
    webhook: str = typer.Option(None, "--webhook"),
    pass_batch: bool = typer.Option(False, "--pass-batch"),
    filter: str = typer.Option(None, "--filter", "-f"),
    batch_size: int = typer.Option(None, "--batch-size"),
    batch_window: float = typer.Option(None, "--batch-window"),
    timeout: float = typer.Option(None, "--timeout"),
    retries: int = typer.Option(None, "--retries"),
    backoff: float = typer.Option(None, "--backoff"),
    min_concurrency: int = typer.Option(None, "--min-concurrency"),
    max_concurrency: int = typer.Option(None, "--max-concurrency"),
    url: str = _URL,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Change fields of a trigger (validated as a whole).

    Example: evfabric trigger update thumbs --max-concurrency 32"""
    changes = _options(pattern=pattern, action=_action(python, shell, webhook, pass_batch), filter=filter,
                       batch_size=batch_size, batch_window=batch_window, timeout=timeout, retries=retries,
                       backoff=backoff, min_concurrency=min_concurrency, max_concurrency=max_concurrency)
    spec = _with_admin(url, lambda t: t.update(name, **changes), data_dir)
    console.print(f"trigger [bold]{spec.name}[/bold] updated")


@trigger_app.command("list")
def list_(url: str = _URL, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the triggers."""
    import msgspec

    specs = _with_admin(url, lambda t: t.list())
    if as_json:
        print(json.dumps([msgspec.to_builtins(s) for s in specs]))
        return
    table = Table(title="triggers")
    for col in ("name", "pattern", "filter", "action", "batch", "concurrency", "enabled"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.name, s.pattern, s.filter or "", f"{s.action.kind}: {s.action.target}",
                      f"{s.batch_size} / {s.batch_window}s", f"{s.min_concurrency}-{s.max_concurrency}",
                      "yes" if s.enabled else "no")
    console.print(table)


@trigger_app.command("describe")
def describe(name: str, url: str = _URL) -> None:
    """Show a trigger's definition, counters and newest invocations (JSON)."""
    print(json.dumps(_with_admin(url, lambda t: t.describe(name)), indent=2))


@trigger_app.command("logs")
def logs(name: str, limit: int = typer.Option(20, "--limit", "-n"), url: str = _URL) -> None:
    """Show a trigger's newest invocations."""
    records = _with_admin(url, lambda t: t.logs(name, limit))
    table = Table(title=f"invocations of {name}")
    for col in ("replica", "events", "attempt", "status", "ms", "error"):
        table.add_column(col)
    for r in records:
        table.add_row(r["replica"], str(r["events"]), str(r["attempt"]), r["status"], f"{r['duration'] * 1e3:.1f}",
                      (r.get("error") or "")[:80])
    console.print(table)


@trigger_app.command("enable")
def enable(name: str, url: str = _URL, data_dir: Path = _DATA_DIR) -> None:
    """Run a disabled trigger again (it resumes where it stopped)."""
    _with_admin(url, lambda t: t.enable(name), data_dir)
    console.print(f"trigger {name} enabled")


@trigger_app.command("disable")
def disable(name: str, url: str = _URL, data_dir: Path = _DATA_DIR) -> None:
    """Stop running a trigger; its events wait in the topic."""
    _with_admin(url, lambda t: t.disable(name), data_dir)
    console.print(f"trigger {name} disabled")


@trigger_app.command("delete")
def delete(name: str, url: str = _URL) -> None:
    """Remove a trigger and its consumers."""
    _with_admin(url, lambda t: t.delete(name))
    console.print(f"trigger {name} deleted")


def _on_broker_host(data_dir: Path, access_enabled: Any) -> bool:
    """True when ``data_dir`` holds an access store with identities that this user can read."""
    import sqlite3

    try:
        return bool(access_enabled(data_dir))
    except (OSError, sqlite3.Error):
        return False


@trigger_app.command("run")
def run(
    url: str = _URL,
    replica: str = typer.Option(None, "--replica", help="replica name (default host-pid)"),
    data_dir: Path = _DATA_DIR,
    accept_unsigned: bool = typer.Option(False, "--accept-unsigned",
                                         help="run definitions that are not signed (a broker without access control)"),
    webhook_allow: list[str] = typer.Option([], "--webhook-allow",
                                            help="a network webhooks may reach although not global, e.g. 10.0.0.0/8"),
) -> None:
    """Run the triggers as one replica until Ctrl-C; start several for high availability.

    Example: evfabric trigger run --url nats://127.0.0.1:4222 -d .evfabric/broker"""
    from evfabric.core.errors import EvfabricError
    from evfabric.triggers import RunnerThread

    options: dict[str, Any] = {"replica": replica} if replica else {}
    shown = url  # never print the session credentials added below
    try:
        from evfabric.access.internal import access_enabled, service_url
        from evfabric.triggers.service import runner_options

        if _on_broker_host(data_dir, access_enabled):  # act as serve's runner does
            options.update(runner_options(data_dir))
            if not os.environ.get("EVFABRIC_TOKEN") and "@" not in url:
                url = service_url(url, data_dir)
        else:
            key = _key(data_dir)
            # an anonymous connection works only on a broker without access control, where nothing
            # is protected: unsigned definitions are then accepted; with credentials, a key is needed
            anonymous = not os.environ.get("EVFABRIC_TOKEN") and "@" not in url
            if key is None and not (accept_unsigned or anonymous):
                console.print(f"[red]error:[/red] no trigger key in {data_dir}: give the broker's data directory "
                              "with -d, or --accept-unsigned on a broker without access control")
                raise typer.Exit(2)
            options.update(key=key, accept_unsigned=key is None)
        runner = RunnerThread(url, webhook_allow=webhook_allow, **options)
    except EvfabricError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"trigger runner [bold]{runner.runner.replica}[/bold] on {shown}; Ctrl-C stops it")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    runner.stop()


def register(app: typer.Typer) -> None:
    app.add_typer(trigger_app, name="trigger")
