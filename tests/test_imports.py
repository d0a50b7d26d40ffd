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


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def imports_of(name: str) -> set[str]:
    """The package's modules `name` imports: `from pkg import mod` names the module mod,
    `from mod import obj` the module mod. The root package is left out as a target: every
    module imports it anyway (it is the parent of all), and it only re-exports the panel lazily."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
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


# The front ends (cli, widgets, server) may import everything below them; the actions moved to
# the application core (app/) reach the package only through the core and `errors` (and their own
# front end's helpers), so they validate and record as every other front end does. The rule for
# every action once moved; enforced for these so far (module -> functions).
THROUGH_THE_CORE: dict[str, set[str]] = {
    "mlops_widgets.cli.config": {"add", "delete"},
    "mlops_widgets.cli.deploy": {"create", "start", "stop", "delete", "infer"},
    "mlops_widgets.cli.monitor": {"create", "run", "delete", "register", "publish"},
    "mlops_widgets.cli.prepare": {"stage", "_on_clash"},
    "mlops_widgets.cli.train": {"submit", "stop", "train_example"},
    "mlops_widgets.widgets.deploy": {"_ask_delete", "_life", "start_deploy"},
    "mlops_widgets.widgets.deploy_tools": {"send_request"},
    "mlops_widgets.widgets.entry_edit": {"do_update"},
    "mlops_widgets.widgets.monitor": {"start_create", "start_evaluate"},
    "mlops_widgets.widgets.monitor_schedule": {"_change"},
    "mlops_widgets.widgets.prepare": {"start_stage"},
    "mlops_widgets.widgets.status": {"_acknowledge"},
    "mlops_widgets.widgets.train": {"do_stop", "do_submit", "do_stage"},
}
CORE_AND_ERRORS = {"app", "errors"}


def _bindings(tree: ast.AST, package: str) -> dict[str, str]:
    """Names bound by the imports directly under `tree` -> the package module they name."""
    out: dict[str, str] = {}
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import):
            out.update({(a.asname or a.name).split(".")[0]: a.name for a in node.names})
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base] if base else parts)
            for a in node.names:
                full = f"{base}.{a.name}"
                out[a.asname or a.name] = full if full in MODULES else base
    return out


def _outside_the_core(module: str, function: ast.FunctionDef, top: dict[str, str]) -> list[str]:
    """What `function` reaches of the package beyond the core, errors and its own front end."""
    own = layer(module)
    package = module.rpartition(".")[0]
    used: set[str] = set()
    # Its decorators declare a command's options (limits, defaults named by the layer that owns
    # them); the action is its signature and body.
    inside = [*function.body, function.args, *([function.returns] if function.returns else [])]
    for node in (n for part in inside for n in ast.walk(part)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            wrapper = ast.Module(body=[node], type_ignores=[])
            used.update(_bindings(wrapper, package).values())
        elif isinstance(node, ast.Name) and node.id in top:
            used.add(top[node.id])
    return sorted(t for t in used if t.startswith(ROOT + ".") and layer(t) not in CORE_AND_ERRORS | {own})


def test_moved_actions_go_through_the_core():
    wrong = []
    for module, functions in THROUGH_THE_CORE.items():
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        top = _bindings(tree, module.rpartition(".")[0])
        found = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in functions}
        assert set(found) == functions, f"{module}: no function {functions - set(found)}"
        for name, function in found.items():
            wrong += [f"{module}.{name} uses {t}" for t in _outside_the_core(module, function, top)]
    assert not wrong, "actions that bypass the application core:\n" + "\n".join(wrong)


def test_the_core_rule_can_fail():
    """The check sees a module-level import used in a function and one inside it."""
    tree = ast.parse(
        "from mlops_widgets.ops import space\n"
        "def add(obj):\n    space.add_entries(obj)\n"
        "def stop(obj):\n    from mlops_widgets.runner import events\n    events.record(obj)\n"
    )
    module = "mlops_widgets.cli.config"
    top = _bindings(tree, "mlops_widgets.cli")
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    assert _outside_the_core(module, functions["add"], top) == ["mlops_widgets.ops.space"]
    assert _outside_the_core(module, functions["stop"], top) == ["mlops_widgets.runner.events"]


# What the core's named actions do below it (module -> functions): the panel, the server
# extension and the demo reach them only through the core, anywhere in their modules, and never
# run a named action's template themselves (`App.run` of A2 would skip deploy_create's checks).
CORE_ONLY: dict[str, set[str]] = {
    "mlops_widgets.runner": {"run_template", "rerun"},
    "mlops_widgets.ops.alerts": {"acknowledge"},
    "mlops_widgets.ops.channels": {"add_channel"},
    "mlops_widgets.ops.deploy": {"deploy_delete", "start", "stop", "infer", "keep_resource_configs"},
    "mlops_widgets.ops.monitor": {"monitor_delete", "monitor_register"},
    "mlops_widgets.ops.notify": {"dispatch", "resend", "remove_channel"},
    "mlops_widgets.ops.publish": {"publish"},
    "mlops_widgets.ops.schedule": {"set_schedule", "unschedule"},
    "mlops_widgets.ops.space": {"add_entries", "delete_entry", "update_entry", "check_stage"},
    "mlops_widgets.ops.train": {"fetch_output", "stop", "split_job_env"},
}


def _core_only_uses(name: str, source: str, templates: set[str]) -> list[str]:
    """Where module `name` reaches a CORE_ONLY function (imported anywhere in it, or used as
    an attribute of a module it imports) or names a named action's template."""
    tree = ast.parse(source)
    package = name if MODULES.get(name, Path()).name == "__init__.py" else name.rpartition(".")[0]
    bound: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = _bindings(ast.Module(body=[node], type_ignores=[]), package)
            bound.update(names)
            if isinstance(node, ast.ImportFrom):
                found += [
                    f"{name}:{node.lineno} imports {names[a.asname or a.name]}.{a.name}"
                    for a in node.names
                    if a.name in CORE_ONLY.get(names[a.asname or a.name], ())
                ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = bound.get(node.value.id, "")
            if node.attr in CORE_ONLY.get(target, ()):
                found.append(f"{name}:{node.lineno} uses {target}.{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in templates:
            found.append(f"{name}:{node.lineno} runs template {node.value} itself")
    return found


def _named_templates() -> set[str]:
    from mlops_widgets.app import deployments, entries, monitoring, training

    return {
        entries.STAGE_TEMPLATE,
        entries.MONITOR_TEMPLATE,
        deployments.DEPLOY_TEMPLATE,
        monitoring.EVALUATE_TEMPLATE,
        training.TRAIN_TEMPLATE,
    }


def test_front_ends_reach_the_named_actions_only_through_the_core():
    templates = _named_templates()
    wrong = [
        problem
        for name, path in sorted(MODULES.items())
        if layer(name) in ("widgets", "server") or name == "mlops_widgets.cli.demo"
        for problem in _core_only_uses(name, path.read_text(encoding="utf-8"), templates)
    ]
    assert not wrong, "named actions done beside the application core:\n" + "\n".join(wrong)


def test_the_named_actions_rule_can_fail():
    source = (
        "from mlops_widgets.ops import notify\n"
        "from mlops_widgets.runner import run_template as rt\n"
        "def go(ctx):\n"
        "    from mlops_widgets.ops import train\n"
        "    train.fetch_output(ctx)\n"
        "    notify.dispatch(ctx.workspace)\n"
        "    ctx.run_template('A5_Monitor_Evaluation', {})\n"
    )
    found = _core_only_uses("mlops_widgets.widgets.monitor", source, _named_templates())
    assert found == [
        "mlops_widgets.widgets.monitor:2 imports mlops_widgets.runner.run_template",
        "mlops_widgets.widgets.monitor:5 uses mlops_widgets.ops.train.fetch_output",
        "mlops_widgets.widgets.monitor:6 uses mlops_widgets.ops.notify.dispatch",
        "mlops_widgets.widgets.monitor:7 runs template A5_Monitor_Evaluation itself",
    ]
