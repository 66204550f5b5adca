"""The public API as a type checker sees it (as msgspec tests its typing): mypy checks
tests/typing_snippets/public_api.py, which must give no error and, for every line marked
``# R: <type>``, reveal exactly that type."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is not installed")

SNIPPET = Path(__file__).parent / "typing_snippets" / "public_api.py"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.timeout(300)
def test_public_api_types() -> None:
    env_path = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = str(SRC)  # this checkout's evfabric, not an installed one
    try:
        out, err, _status = api.run([
            "--follow-imports=silent", "--no-error-summary", "--hide-error-context", "--show-absolute-path",
            "--cache-dir", str(Path(os.environ.get("TMPDIR", "/tmp")) / "evfabric-mypy-typing"),
            "--python-version", "3.11", str(SNIPPET),
        ])
    finally:
        if env_path is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = env_path
    revealed: dict[int, str] = {}
    errors: list[str] = []
    for line in out.splitlines():
        m = re.match(r".*public_api\.py:(\d+): note: Revealed type is \"(.*)\"", line)
        if m:
            revealed[int(m.group(1))] = m.group(2)
        elif ": error:" in line:
            errors.append(line)
    assert not errors, "\n".join(errors) + err
    expected = {
        n: m.group(1).strip()
        for n, text in enumerate(SNIPPET.read_text().splitlines(), 1)
        if (m := re.search(r"# R: (.*)$", text))
    }
    assert expected and set(revealed) == set(expected), (revealed, expected)
    for n, want in expected.items():
        assert revealed[n] == want, f"line {n}: revealed {revealed[n]}, expected {want}"
