"""``evfabric status``: is the broker up, who is connected, which streams and consumers exist.

Reads the server's HTTP monitoring endpoints (``/healthz``, ``/varz``, ``/connz``, ``/jsz``).
Given a ``nats://`` URL instead, asks the server over NATS (server info from the connection,
streams and consumers from the JetStream API), which works without the monitoring port.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evfabric.broker.config import redact_url
from evfabric.cli._common import CONTEXT, DEFAULT_URL, TOKEN, Target, resolve
from evfabric.core.errors import BrokerUnavailable

DEFAULT_MONITOR_URL = "http://127.0.0.1:8222"


def status_from_monitor(base: str, timeout: float = 3.0) -> dict[str, Any]:
    """Summary of one server from its monitoring endpoints; raises ``httpx.HTTPError`` if down."""
    base = base.rstrip("/")
    with httpx.Client(timeout=timeout) as http:
        health = http.get(f"{base}/healthz")
        varz = http.get(f"{base}/varz").json()
        connz = http.get(f"{base}/connz").json()
        jsz = http.get(f"{base}/jsz", params={"streams": 1, "consumers": 1, "config": 1}).json()
    streams = []
    for acc in jsz.get("account_details") or []:
        for st in acc.get("stream_detail") or []:
            state = st.get("state", {})
            streams.append(
                {
                    "account": acc.get("name"),
                    "name": st.get("name"),
                    "messages": state.get("messages", 0),
                    "bytes": state.get("bytes", 0),
                    "consumers": state.get("consumer_count", len(st.get("consumer_detail") or [])),
                    "replicas": (st.get("config") or {}).get("num_replicas"),
                    "leader": (st.get("cluster") or {}).get("leader"),
                }
            )
    return {
        "source": base,
        "healthy": health.status_code == 200,
        "health": _json_or_text(health),
        "server_name": varz.get("server_name"),
        "version": varz.get("version"),
        "uptime": varz.get("uptime"),
        "client_url": f"nats://{varz.get('host')}:{varz.get('port')}",
        "connections": connz.get("num_connections", varz.get("connections")),
        "in_msgs": varz.get("in_msgs"),
        "out_msgs": varz.get("out_msgs"),
        "cluster": (varz.get("cluster") or {}).get("name"),
        "routes": varz.get("routes"),
        "leafnodes": varz.get("leafnodes"),
        "jetstream": {
            "enabled": bool(varz.get("jetstream")),
            "domain": (jsz.get("config") or {}).get("domain"),
            "meta_leader": (jsz.get("meta_cluster") or {}).get("leader"),
            "streams": jsz.get("streams", len(streams)),
            "consumers": jsz.get("consumers"),
            "messages": jsz.get("messages"),
            "bytes": jsz.get("bytes"),
        },
        "streams": streams,
    }


def _json_or_text(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


async def status_from_nats(url: str, timeout: float = 3.0, **options: Any) -> dict[str, Any]:
    """Summary of the server behind a ``nats://`` URL, over NATS (``options``: token, TLS for
    ``nats.connect``); raises :class:`BrokerUnavailable` or :class:`AccessDenied` within about
    ``timeout`` seconds if it cannot connect."""
    import nats

    from evfabric.core.errors import AccessDenied, BrokerUnavailable

    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    from urllib.parse import unquote, urlsplit

    user = unquote(urlsplit(url).username or "")
    if re.fullmatch(r"[0-9a-f]{16}", user) and "inbox_prefix" not in options:
        options["inbox_prefix"] = f"_INBOX.{user}"  # a token may only read replies there
    try:
        nc = await asyncio.wait_for(nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=0,
                                                 allow_reconnect=False, error_cb=on_error, **options), timeout + 1)
    except Exception as exc:  # refused, timed out, closed: one answer, never a traceback
        shown = url.rsplit("@", 1)[-1]
        text = " ".join([str(exc), *refusals]).lower()
        if "authorization" in text or "authentication" in text:
            raise AccessDenied(f"the broker at {shown} refused the connection: "
                               f"{'the token is unknown, revoked or expired' if options else 'no token given'}"
                               ) from None
        why = refusals[-1] if refusals else f"{type(exc).__name__}: {exc or 'no answer in time'}"
        raise BrokerUnavailable(f"no broker answers at {shown} ({why})") from None
    try:
        info = nc._server_info  # what the server sent on connect (no public accessor in nats-py)
        out: dict[str, Any] = {
            "source": redact_url(url),
            "healthy": True,
            "server_name": info.get("server_name"),
            "version": info.get("version"),
            "client_url": redact_url(url),
            "cluster": info.get("cluster"),
            "jetstream": {"enabled": bool(info.get("jetstream"))},
            "streams": [],
        }
        if info.get("jetstream"):
            js = nc.jetstream(timeout=timeout)
            acct = await js.account_info()
            out["jetstream"].update(
                {"domain": acct.domain, "streams": acct.streams, "consumers": acct.consumers, "bytes": acct.storage}
            )
            for st in await js.streams_info():
                out["streams"].append(
                    {
                        "name": st.config.name,
                        "messages": st.state.messages,
                        "bytes": st.state.bytes,
                        "consumers": st.state.consumer_count,
                        "replicas": st.config.num_replicas,
                        "leader": st.cluster.leader if st.cluster else None,
                    }
                )
        return out
    finally:
        await nc.close()


def gather(url: str, **options: Any) -> dict[str, Any]:
    """Status summary from a monitoring (``http://``) or client (``nats://``) URL."""
    if url.startswith(("http://", "https://")):
        return status_from_monitor(url)
    return asyncio.run(status_from_nats(url, **options))


def _print(status: dict[str, Any], console: Console) -> None:
    ok = "[green]healthy[/green]" if status.get("healthy") else f"[red]unhealthy[/red] {status.get('health')}"
    console.print(f"[bold]{status.get('server_name') or '?'}[/bold] {status.get('client_url')}  {ok}")
    console.print(f"  nats-server {status.get('version')}  uptime {status.get('uptime', '?')}")
    if status.get("connections") is not None:
        console.print(
            f"  connections {status['connections']}  msgs in {status.get('in_msgs')} out {status.get('out_msgs')}"
        )
    if status.get("cluster"):
        console.print(f"  cluster {status['cluster']}  routes {status.get('routes')}")
    if status.get("leafnodes"):
        console.print(f"  leaf nodes {status['leafnodes']}")
    js = status.get("jetstream") or {}
    if not js.get("enabled"):
        console.print("  JetStream off")
        return
    console.print(
        f"  JetStream domain {js.get('domain') or '-'}  meta leader {js.get('meta_leader') or '-'}  "
        f"streams {js.get('streams')}  consumers {js.get('consumers')}"
    )
    if status.get("streams"):
        table = Table()
        for col in ("stream", "messages", "bytes", "consumers", "replicas", "leader"):
            table.add_column(col, justify="left" if col in ("stream", "leader") else "right")
        for st in status["streams"]:
            table.add_row(
                st["name"], str(st["messages"]), str(st["bytes"]), str(st["consumers"]),
                str(st.get("replicas") or ""), st.get("leader") or "",
            )
        console.print(table)


HELP = """Show broker health, connections, and a JetStream streams/consumers summary.

Examples:

    evfabric status                                  # the monitoring port, http://127.0.0.1:8222
    evfabric status --url nats://127.0.0.1:4222 --token "$TOKEN" --json
"""


def _redacted(text: str, url: str) -> str:
    """``text`` without the password of ``url`` (an error message may quote the URL)."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    if password:
        text = text.replace(password, "***").replace(unquote(password), "***")
    return text


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    def status(
        url: str = typer.Option(
            None, "--url", "-u", help="monitoring URL (http://host:8222, the default) or client URL (nats://host:4222)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        token: str = TOKEN, context: str = CONTEXT,
    ) -> None:
        from evfabric.core.errors import EvfabricError

        console = Console(stderr=True)
        target: Target | None = resolve(url, token, context)  # flags, environment, the selected context
        if target is not None and target.url == DEFAULT_URL and not target.token and not url:
            target = None  # nothing chosen: the default broker's monitoring port tells more
        where = target.url if target is not None else DEFAULT_MONITOR_URL
        try:
            result = gather(where, **(target.raw_nats_options() if target is not None else {}))
        except (EvfabricError, httpx.HTTPError, OSError) as exc:  # one line, whatever the reason
            if isinstance(exc, httpx.HTTPError):
                exc = BrokerUnavailable(f"no broker answers at {where} ({type(exc).__name__}: {exc})")
            why = _redacted(str(exc) or type(exc).__name__, where)
            if as_json:
                print(json.dumps({"source": redact_url(where), "healthy": False, "error": why}))
            else:
                console.print(f"[red]error:[/red] {escape(why)}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
        console = Console()
        if as_json:
            print(json.dumps(result, default=str))
        else:
            _print(result, console)
        if not result.get("healthy"):
            raise typer.Exit(1)
