"""The run's notebook: the template parameterized for papermill, and what its execution says
(the first failing cell, papermill's error banner, how the run ended)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_widgets.runner.control import RunControl
from mlops_widgets.runner.templates import Template


def template_notebook(template: Template) -> Any:
    """The template as a notebook object, with the metadata papermill expects."""
    import nbformat

    nb = nbformat.reads(template.raw.decode("utf-8"), as_version=4)
    nb = nbformat.v4.upgrade(nb) or nb
    nb.metadata.setdefault(
        "papermill", {"default_parameters": {}, "parameters": {}, "environment_variables": {}}
    )
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def parameterize(nb: Any, params: Mapping[str, Any], secret_params: list[str]) -> Any:
    """Papermill's injected-parameters cell for `params`; each secret parameter is injected as
    code reading the kernel's environment, so its value is never in the notebook."""
    if not params and not secret_params:
        return nb
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(nb, dict(params), language="python")
    if secret_params:
        cell = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        lines = ["from mlops_widgets.runner.secrets import secret  # secrets come from the environment"]
        lines += [f"{name} = secret({name!r})" for name in secret_params]
        cell.source = cell.source.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    return nb


def one_parameters_cell(nb: Any) -> Any:
    """Fold papermill's injected-parameters cell into the template's parameters cell, so an
    editable copy has exactly one place where its parameters are set: each injected value
    replaces the template's assignment of that name (its annotation and comment kept), the
    rest (secret lines) follows. The cell keeps both tags (papermill's and the clone's)."""
    import ast

    tags = [c.metadata.get("tags", []) for c in nb.cells]
    injected_at = next((i for i, t in enumerate(tags) if "injected-parameters" in t), None)
    params_at = next((i for i, t in enumerate(tags) if "parameters" in t), None)
    if injected_at is None or params_at is None:
        return nb
    injected, target = nb.cells[injected_at], nb.cells[params_at]
    given: dict[str, str] = {}  # name -> its injected value's source
    extra: list[str] = []  # injected lines that assign no template parameter (imports, secrets)
    tree = ast.parse(injected.source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            given[node.targets[0].id] = ast.get_source_segment(injected.source, node.value) or ""
        else:
            extra.append(ast.get_source_segment(injected.source, node) or "")
    lines = target.source.splitlines()
    replaced: set[str] = set()
    defaults: dict[str, str] = {}  # the template's own values left in place: name -> source
    for node in reversed(ast.parse(target.source).body):
        name = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, head = node.targets[0].id, node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            head = f"{name}: {ast.get_source_segment(target.source, node.annotation)}"
        if name is not None and name not in given and node.value is not None:
            defaults[name] = ast.get_source_segment(target.source, node.value) or ""
        if name not in given or node.end_lineno is None or node.end_col_offset is None:
            continue
        tail = lines[node.end_lineno - 1][node.end_col_offset :]  # a trailing comment
        indent = lines[node.lineno - 1][: node.col_offset]
        lines[node.lineno - 1 : node.end_lineno] = [f"{indent}{head} = {given[name]}{tail}"]
        replaced.add(name)
    rest = [f"{name} = {value}" for name, value in given.items() if name not in replaced]
    target.source = "\n".join(lines + extra + rest).rstrip("\n") + "\n"
    target.metadata["tags"] = [*tags[params_at], "injected-parameters"]
    # The template's defaults as written: a plan reads only the values the clone set or the user edited.
    target.metadata["mlops_defaults"] = dict(sorted(defaults.items()))
    del nb.cells[injected_at]
    return nb


def error_of(nb: Any, headings: dict[int, str | None]) -> dict[str, Any] | None:
    """The first error output of the executed notebook (SystemExit(0) is not an error)."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                continue
            ename, evalue = out.get("ename", ""), out.get("evalue", "")
            return {
                "summary": f"{ename}: {evalue}" if evalue else ename,
                "ename": ename,
                "evalue": evalue,
                "cell_index": index,
                "execution_count": cell.get("execution_count"),
                "heading": headings.get(index),
            }
    return None


def with_hint(error: dict[str, Any] | None, raised: dict[str, Any] | None) -> dict[str, Any] | None:
    """The failed cell's error with the message and hint of the MlopsError that raised it: the
    summary is its message alone (the hint is data, rendered by each front end)."""
    if error is None or raised is None or raised.get("ename") != error["ename"]:
        return error
    if not str(error["evalue"]).startswith(str(raised.get("message"))):
        return error  # another error of the same type ended the cell
    return {**error, "summary": f"{error['ename']}: {raised['message']}", "hint": raised.get("hint")}


def mark_error(nb: Any, cell_index: int, execution_count: Any) -> None:
    """Papermill's red banner at the top and anchor above the failing cell."""
    import nbformat
    from papermill.execute import ERROR_ANCHOR_MSG, ERROR_MARKER_TAG, ERROR_MESSAGE_TEMPLATE

    banner = nbformat.v4.new_markdown_cell(ERROR_MESSAGE_TEMPLATE % str(execution_count))
    anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)
    banner.metadata["tags"] = [ERROR_MARKER_TAG]
    anchor.metadata["tags"] = [ERROR_MARKER_TAG]
    nb.cells.insert(cell_index, anchor)
    nb.cells.insert(0, banner)


def outcome(
    nb: Any, failure: BaseException | None, control: RunControl, raised: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """Status and error of a finished execution: cancelled, interrupted, timed out, a failed
    cell, or what stopped the kernel (it failed to start, or died: then with the kernel's log).
    `raised`: the MlopsError that ended a cell, as its kernel kept it (record.read_raised)."""
    error = with_hint(error_of(nb, control.headings), raised)
    if control.reason is None and isinstance(failure, KeyboardInterrupt):
        control.reason = "cancelled"  # Ctrl-C in the calling thread
    where = control.current_cell
    heading = control.headings.get(where) if where is not None else None
    if control.reason in ("cancelled", "interrupted"):
        return control.reason, {**(error or {}), "summary": control.reason, "heading": heading}
    if control.reason == "timeout":
        return "failed", {
            **(error or {}),
            "summary": f"timed out after {control.timeout:g} s",
            "heading": heading,
        }
    if error is not None:
        return "failed", error
    if failure is not None:
        return "failed", {
            "summary": f"{type(failure).__name__}: {failure}".removesuffix(": "),
            "ename": type(failure).__name__,
            "evalue": str(failure),
            "cell_index": None,
            "heading": heading,
            "kernel_log": control.kernel_log_tail(),
        }
    return "ok", None
