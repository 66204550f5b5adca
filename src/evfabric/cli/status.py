"""``evfabric status``: is the broker up, who is connected, which streams and consumers exist.

Reads the server's HTTP monitoring endpoints (``/healthz``, ``/varz``, ``/connz``, ``/jsz``).
Given a ``nats://`` URL instead, asks the server over NATS (server info from the connection,
streams and consumers from the JetStream API), which works without the monitoring port.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

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


async def status_from_nats(url: str, timeout: float = 3.0) -> dict[str, Any]:
    """Summary of the server behind a ``nats://`` URL, over NATS; raises if it cannot connect."""
    import nats

    nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        info = nc._server_info  # what the server sent on connect (no public accessor in nats-py)
        out: dict[str, Any] = {
            "source": url,
            "healthy": True,
            "server_name": info.get("server_name"),
            "version": info.get("version"),
            "client_url": url,
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


def gather(url: str) -> dict[str, Any]:
    """Status summary from a monitoring (``http://``) or client (``nats://``) URL."""
    if url.startswith(("http://", "https://")):
        return status_from_monitor(url)
    return asyncio.run(status_from_nats(url))


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


def register(app: typer.Typer) -> None:
    @app.command()
    def status(
        url: str = typer.Option(
            DEFAULT_MONITOR_URL, "--url", "-u", help="monitoring URL (http://host:8222) or client URL (nats://host:4222)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Show broker health, connections, and a JetStream streams/consumers summary."""
        console = Console()
        try:
            result = gather(url)
        except Exception as exc:  # any failure to reach it is the same answer for the user
            if as_json:
                print(json.dumps({"source": url, "healthy": False, "error": str(exc) or type(exc).__name__}))
            else:
                console.print(f"[red]no broker answers at {url}[/red]: {exc or type(exc).__name__}")
            raise typer.Exit(1) from None
        if as_json:
            print(json.dumps(result, default=str))
        else:
            _print(result, console)
        if not result.get("healthy"):
            raise typer.Exit(1)
