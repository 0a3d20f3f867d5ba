"""The repository stands alone (issue 15, items 10 and 11): docs/protocol.md is the contract as
served, every citation points into one of its sections, and the stale lines are gone."""

from __future__ import annotations

import re
from pathlib import Path

from support import cli

from timserver.protocol.commands import COMMANDS
from timserver.protocol.errors import CATALOGUE, RETRYABLE_CODES

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"


def repo_files() -> list[Path]:
    found = [ROOT / "README.md"]
    for folder in ("src", "tests", "docs", "bench"):
        found += [p for p in (ROOT / folder).rglob("*") if p.is_file()
                  and p.suffix in (".py", ".md", ".js", ".html", ".lua", ".css")]
    return found


def test_nothing_cites_a_document_outside_the_repository() -> None:
    me = Path(__file__).resolve()
    outside = [f"{p.relative_to(ROOT)}:{n}" for p in repo_files() if p.resolve() != me
               for n, line in enumerate(p.read_text("utf-8").splitlines(), 1)
               if "spec §" in line or "shared/spec" in line]
    assert outside == []


def test_every_citation_names_a_section_of_protocol_md() -> None:
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\. ", PROTOCOL.read_text("utf-8"), re.M)
                   + re.findall(r"^### (\d+\.\d+) ", PROTOCOL.read_text("utf-8"), re.M))
    assert {"4", "5.5", "7.8", "8.1"} <= sections
    cited = {(str(p.relative_to(ROOT)), number) for p in repo_files()
             for number in re.findall(r"protocol\.md\)? §(\d+(?:\.\d+)?)", p.read_text("utf-8"))}
    assert len(cited) > 30  # the code, the tests and the docs point into it
    assert {c for c in cited if c[1] not in sections} == set()


def test_protocol_md_states_every_code_command_and_limit_the_code_uses() -> None:
    text = PROTOCOL.read_text("utf-8")
    assert [code for code in CATALOGUE if f"| {code} |" not in text] == []
    for code in RETRYABLE_CODES:
        assert str(code) in text.split("### 6.3")[1].split("##")[0]
    for cmd in COMMANDS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{cmd.name}` |"))
        assert f"{cmd.default_rate}/s" in row and str(cmd.max_items) in row, row
    for fact in ("1 MiB", "3 s", "4294967295", "8 KiB", "16 KiB", "Retry-After",
                 "Err_TLS_PT_Open_Login_Account_Not_Exist", "32 bytes", "500 bytes"):
        assert fact in text, fact


def test_the_stale_lines_are_gone() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "list NAME" not in readme  # `snapshot list` takes no name:
    assert cli("snapshot", "list", "NAME", check=False).returncode == 2
    docs = "".join(p.read_text("utf-8") for p in (ROOT / "docs").glob("*.md"))
    assert "subject of the scale-out work" not in docs  # Redis-shared limits are built
    assert "--redis" in PROTOCOL.read_text("utf-8")
