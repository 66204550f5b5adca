"""Event bodies for ``evfabric pub``: one JSON body, one per stdin line, or a counted template.

``{{i}}`` (or ``{{Count}}``, as in ``nats pub``) in BODY becomes the event's number (1..COUNT)
and ``{{Time}}`` the publish time, so ``--count 3 '{"i": {{i}}}'`` publishes ``{"i": 1}``,
``{"i": 2}``, ``{"i": 3}``. BODY ``-`` reads one body per line from stdin (no BODY: ``{}``). A body is a JSON object; anything else is refused, unless ``text`` is set: then
each body is ``{"text": <the line or BODY>}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["bodies"]


def _parse(text: str, text_mode: bool, where: str) -> Any:
    if text_mode:
        return {"text": text}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where} is not JSON ({exc}); use --text to send it as {{\"text\": ...}}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where} is a JSON {type(value).__name__}, not an object; use --text for plain text")
    return value


def _fill(template: str, i: int) -> str:
    return (template.replace("{{i}}", str(i)).replace("{{Count}}", str(i))
            .replace("{{Time}}", repr(time.time())))


def bodies(body: str | None, count: int, text: bool = False, stdin: IO[str] | None = None) -> Iterator[Any]:
    """The bodies to publish (see module doc); raises ValueError naming a bad one."""
    stdin = stdin if stdin is not None else sys.stdin
    if body == "-":
        for n, line in enumerate(stdin, 1):
            line = line.rstrip("\n")
            if line.strip():
                yield _parse(line, text, f"stdin line {n}")
        return
    template = "{}" if body is None else body
    if "{{" not in template:
        value = _parse(template, text, "BODY")
        for _ in range(count):
            yield value
        return
    for i in range(1, count + 1):
        yield _parse(_fill(template, i), text, f"BODY for event {i}")
