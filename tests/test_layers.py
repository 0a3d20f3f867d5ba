"""The layers point one way (docs/architecture.md): read from the imports themselves."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "timserver"


def imports_of(folder: str) -> dict[str, set[str]]:
    """Module file → the timserver modules it imports (absolute names)."""
    found: dict[str, set[str]] = {}
    for path in (SRC / folder).rglob("*.py"):
        package = ["timserver", *path.relative_to(SRC).parent.parts]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(SRC))] = {n for n in names if n.startswith("timserver")}
    return found


def test_server_imports_no_plugin_of_its_own_choosing() -> None:
    for module, names in imports_of("server").items():
        assert not any(n.startswith(("timserver.emulator", "timserver.wiring")) for n in names), \
            (module, names)


def test_the_emulator_knows_only_the_hooks_of_the_server() -> None:
    for module, names in imports_of("emulator").items():
        server = {n for n in names if n.startswith("timserver.server")}
        assert server <= {"timserver.server.hooks"} | {
            f"timserver.server.hooks.{n}" for n in ("AbortConnection", "Access", "BadInput",
                                                    "Call", "Endpoint", "EndpointCall", "Plugin",
                                                    "Serve", "ServerHandles", "Operation",
                                                    "JournalEntry")}, (module, server)


def test_service_and_storage_know_no_wire() -> None:
    for folder in ("service", "storage"):
        for module, names in imports_of(folder).items():
            assert not any(n.startswith(("timserver.server", "timserver.emulator"))
                           for n in names), (module, names)
