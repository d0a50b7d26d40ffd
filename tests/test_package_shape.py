"""The package's shape as issue 11 left it, checked from the source: config free of the monitor
registry and the workspace, no private jupyter_client override, small modules, and no message
outside the CLI naming a CLI flag or command (the panel shows messages word for word)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlops_widgets"
MAX_LINES = 500  # 450 hand-formatted lines; ruff format's vertical layout grew modules 6-11 %


def sources(root: Path = PACKAGE) -> list[Path]:
    return sorted(root.rglob("*.py"))


def test_config_reads_no_registry_and_no_workspace():
    """`grep -rn "known_definitions\\|Workspace(" mlops_widgets/config` finds nothing."""
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sources(PACKAGE / "config")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "known_definitions" in line or "Workspace(" in line
    ]
    assert not found, "\n".join(found)


def test_no_private_jupyter_client_method_is_overridden():
    private = "_async_pre" + "_start_kernel"  # spelled in two halves so this file holds no match
    found = [
        str(path.relative_to(ROOT))
        for folder in ("mlops_widgets", "tests", "tools", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if private in path.read_text(encoding="utf-8")
    ]
    assert found == []


def test_no_module_is_over_500_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in sources()}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


# A CLI flag (`--force`) or an `mlops <group>` command, as a message would name them.
CLI_WORDS = re.compile(
    r"(^|[\s`(])--[a-z]|\bmlops (prepare|deploy|monitor|config|runs|run|templates|runtime|provider|train|demo|serve|lab)\b"
)


def _callee(node: ast.Call) -> str:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", None) or ""


def test_no_message_outside_the_cli_names_a_flag_or_a_command():
    """Errors and hint texts raised below the CLI reach the panel as they are: the fix travels as
    a hint's action, which only the CLI renders as a flag (cli/_hints.py)."""
    found = []
    for path in sources():
        if path.parent.name == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = _callee(node)
            if name == "Hint":
                words = node.args[1:2] + [k.value for k in node.keywords if k.arg == "text"]
            elif name.endswith("Error"):
                words = node.args[:1] + [k.value for k in node.keywords if k.arg == "message"]
            else:
                continue
            for arg in words:
                for part in ast.walk(arg):
                    if (
                        isinstance(part, ast.Constant)
                        and isinstance(part.value, str)
                        and CLI_WORDS.search(part.value)
                    ):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {part.value!r}")
    assert not found, "messages naming CLI flags or commands:\n" + "\n".join(found)
