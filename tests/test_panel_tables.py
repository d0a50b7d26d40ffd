"""The panel's table and confirmation widgets on the Python side: rows are data (a cell never
holds an object to render), a selection survives a refresh when its row does, and a dialog's
answer runs the step only on OK, once, and only for the question it answers. (Drawn in a real
JupyterLab: tests/test_lab_tables.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets import TraitError

from mlops_widgets.widgets._dialog import ConfirmDialog
from mlops_widgets.widgets._table import MODULE, MODULE_VERSION, Table, column

REPO = Path(__file__).resolve().parent.parent


def test_rows_are_json_scalars_with_unique_ids() -> None:
    table = Table([column("name", "Name")], label="Deployments")
    markup = "<img src=x onerror=alert(1)>"
    table.show([{"id": "a", "name": markup}], None)
    assert table.rows[0]["name"] == markup  # sent as text; the frontend sets textContent
    with pytest.raises(TraitError, match="column name holds a dict"):
        table.rows = [{"id": "a", "name": {"html": markup}}]
    with pytest.raises(TraitError, match="row id 'a' is given twice"):
        table.rows = [{"id": "a"}, {"id": "a"}]
    with pytest.raises(TraitError, match="row 0 has no text id"):
        table.rows = [{"name": "x"}]
    with pytest.raises(ValueError, match="unknown tone 'red'"):
        column("state", "State", tones={"started": "red"})


def test_a_refresh_keeps_the_selected_row_while_it_exists() -> None:
    table = Table([column("name", "Name")], label="Runs")
    table.show([{"id": "a"}, {"id": "b"}], None)
    assert table.value == "a"  # nothing picked yet: the first row
    table.value = "b"
    table.show([{"id": "c"}, {"id": "b"}], table.value)
    assert table.value == "b" and table.options == ("c", "b")
    table.show([{"id": "c"}], table.value)
    assert table.value == "c"
    table.show([], table.value)
    assert table.value is None and table.row("c") is None


def test_the_dialog_runs_its_step_only_on_ok_and_only_for_its_question() -> None:
    dialog = ConfirmDialog()
    done: list[str] = []
    dialog.ask("Delete deployment d?", "This cannot be undone.", "Delete", lambda: done.append("first"))
    assert dialog.asking and dialog.question.startswith("Delete deployment d?")
    dialog._handle_custom_msg({"answer": 1, "ok": False}, [])  # Cancel: as the frontend answers it
    assert done == [] and not dialog.asking
    dialog.ask("Re-run A?", "", "Re-run", lambda: done.append("second"), items=["one", "two"])
    assert dialog.question == "Re-run A?\n\none\ntwo"
    dialog.ask("Re-run B?", "", "Re-run", lambda: done.append("third"))  # replaces the unanswered one
    dialog._handle_custom_msg({"answer": 2, "ok": True}, [])  # the answer to the replaced question
    assert done == [] and dialog.asking
    dialog._handle_custom_msg({"answer": 3, "ok": True}, [])
    dialog._handle_custom_msg({"answer": 3, "ok": True}, [])  # a second OK runs nothing more
    assert done == ["third"] and not dialog.asking


def test_the_python_models_name_the_module_the_labextension_registers() -> None:
    source = (REPO / "labextension" / "src" / "widgets.ts").read_text()
    assert f"export const MODULE_NAME = '{MODULE}';" in source
    assert f"export const MODULE_VERSION = '{MODULE_VERSION.lstrip('^')}';" in source
    package = json.loads((REPO / "labextension" / "package.json").read_text())
    assert package["name"] == MODULE and package["version"] == MODULE_VERSION.lstrip("^")
