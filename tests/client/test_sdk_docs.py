"""The examples of docs/client.md and of the README's SDK section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sdk_support import ImApp

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Python SDK and bulk CLI")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end != -1 else None]


@pytest.mark.parametrize("source", ["docs/client.md", "README.md"])
def test_examples_run(source: str, im: ImApp, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    text = readme_section() if source == "README.md" else (ROOT / source).read_text()
    blocks = python_blocks(text)
    assert len(blocks) >= (1 if source == "README.md" else 7)
    for name, value in im.env().items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{source} python block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{source}, python block {number} failed: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out
    assert "Imported" in out  # the examples print what they claim to
