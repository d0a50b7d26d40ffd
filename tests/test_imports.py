"""The import graph of the package, read from the source with `ast`: no circles, and the layers
of docs/architecture.md hold (imports only go downward). Imports inside functions count as much
as module-level ones (they run too); only `if TYPE_CHECKING:` blocks are left out."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mlops_widgets"
ROOT = "mlops_widgets"

# layer -> the layers it must not import (docs/architecture.md); a layer is the first name below
# the package: a sub-package (config, ops...) or a bottom module (workspace, errors...).
ABOVE_BOTTOM = {
    "config",
    "monitors",
    "backends",
    "ops",
    "runner",
    "app",
    "cli",
    "widgets",
    "server",
    "edi_helpers",
}
FORBIDDEN: dict[str, set[str]] = {
    **{
        bottom: ABOVE_BOTTOM
        for bottom in (
            "workspace",
            "errors",
            "secret_names",
            "masking",
            "logs",
            "settings",
            "plugins",
            "events_feed",
        )
    },
    "config": ABOVE_BOTTOM - {"config"} | {"workspace"},
    "monitors": {"backends", "ops", "runner", "app", "cli", "widgets", "server"},
    "backends": {"ops", "runner", "app", "cli", "widgets", "server"},
    "edi_helpers": {"ops", "runner", "app", "cli", "widgets", "server"},
    "ops": {"runner", "app", "cli", "widgets", "server"},
    "runner": {"app", "cli", "widgets", "server"},
    "app": {"cli", "widgets", "server"},
    "cli": {"widgets", "server"},
    "widgets": {"cli", "server"},
    "server": {"cli", "widgets"},
}
# The one downward-looking exception: monitor definitions are plain data the config model
# validates against (no registry, no workspace).
ALLOWED = {("config", "mlops_widgets.monitors.definitions")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST, types: bool = False) -> Iterator[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if not types and isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def imports_of(name: str, types: bool = False) -> set[str]:
    """The package's modules `name` imports (with `types`, in `if TYPE_CHECKING:` blocks too):
    `from pkg import mod` names the module mod, `from mod import obj` the module mod. The root
    package is left out as a target: every module imports it anyway (it is the parent of all),
    and it only re-exports the panel lazily."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), types):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        found.update(t for t in targets if t in MODULES and t not in (name, ROOT))
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_scan_sees_the_package():
    assert len(MODULES) > 50
    assert "mlops_widgets.backends.base" in GRAPH["mlops_widgets.backends.local.volumes"]
    assert "mlops_widgets.monitors.registry" in GRAPH["mlops_widgets.backends.local.monitoring"]
    assert "mlops_widgets.app" in GRAPH["mlops_widgets.cli._run"]  # a function-level import


def test_the_scanner_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    found = cycles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(group) for group in found)


def test_imports_only_go_downward():
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if layer(target) in FORBIDDEN.get(layer(name), set()) and (layer(name), target) not in ALLOWED
    )
    assert not wrong, "imports against the layers of docs/architecture.md:\n" + "\n".join(wrong)


# The front ends (cli, widgets, server) reach the package only through the application core
# (app/), its errors and the plain vocabulary the core speaks: the entry model (config), the
# workspace, settings, the change feed's reader, credential names, log set-up, the bundled
# examples. Steps (ops), the runner, backends and monitors are the core's to call, so an action
# validates, records and keeps the workflow's invariants once, whichever front end asks; type
# hints (`if TYPE_CHECKING:`) name the core's types too.
FRONT_ENDS = {"cli", "widgets", "server"}
FRONT_ENDS_USE = FRONT_ENDS | {
    "app",
    "errors",
    "config",
    "workspace",
    "settings",
    "secret_names",
    "events_feed",
    "logs",
    "examples",
}


def beyond_the_core(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if layer(name) in FRONT_ENDS
        for target in targets
        if layer(target) not in FRONT_ENDS_USE
    )


def test_front_ends_import_only_the_core():
    wrong = beyond_the_core({name: imports_of(name, types=True) for name in MODULES})
    assert not wrong, "front ends that reach past the application core:\n" + "\n".join(wrong)


def test_the_core_rule_can_fail():
    """A front end's import of a step is found, one inside a function and a type-only one too."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mlops_widgets.backends.views import JobView\n"
        "def go():\n    from mlops_widgets.ops import space\n    from mlops_widgets.app import App\n"
    )
    tree = ast.parse(source)
    assert {n.module for n in _import_nodes(tree)} == {"typing", "mlops_widgets.ops", "mlops_widgets.app"}
    assert {n.module for n in _import_nodes(tree, types=True)} >= {"mlops_widgets.backends.views"}
    graph = {
        "mlops_widgets.widgets.train": {"mlops_widgets.app", "mlops_widgets.backends.views"},
        "mlops_widgets.cli.prepare": {"mlops_widgets.ops.space", "mlops_widgets.errors"},
        "mlops_widgets.ops.deploy": {"mlops_widgets.backends.base"},
    }
    assert beyond_the_core(graph) == [
        "mlops_widgets.cli.prepare imports mlops_widgets.ops.space",
        "mlops_widgets.widgets.train imports mlops_widgets.backends.views",
    ]


def named_template_uses(name: str, source: str, templates: set[str]) -> list[str]:
    """Where module `name` names the template of one of the core's named actions: a front end
    that ran it itself (`App.run` of A2) would skip the named method's checks and records."""
    return [
        f"{name}:{node.lineno} runs template {node.value} itself"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in templates
    ]


def _named_templates() -> set[str]:
    from mlops_widgets.app import deployments, entries, monitoring, training

    return {
        entries.STAGE_TEMPLATE,
        entries.MONITOR_TEMPLATE,
        deployments.DEPLOY_TEMPLATE,
        monitoring.EVALUATE_TEMPLATE,
        training.TRAIN_TEMPLATE,
    }


def test_front_ends_run_the_named_actions_only_through_the_core():
    templates = _named_templates()
    wrong = [
        problem
        for name, path in sorted(MODULES.items())
        if layer(name) in FRONT_ENDS
        for problem in named_template_uses(name, path.read_text(encoding="utf-8"), templates)
    ]
    assert not wrong, "named actions done beside the application core:\n" + "\n".join(wrong)


def test_the_named_template_rule_can_fail():
    source = "def go(ctx):\n    ctx.run('A5_Monitor_Evaluation', {})\n    ctx.run('C1_Custom', {})\n"
    found = named_template_uses("mlops_widgets.widgets.monitor", source, _named_templates())
    assert found == ["mlops_widgets.widgets.monitor:2 runs template A5_Monitor_Evaluation itself"]
