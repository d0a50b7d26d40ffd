"""A table of rows as JupyterLab draws one (the labextension's `TableView`): sortable by its
headers, paginated, one row selected, status values as theme-coloured badges.

Columns and rows travel as JSON data, never HTML: a name holding markup shows as text. Sorting
and paging happen in the browser; the selected row's id comes back as `value`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
from traitlets import Bool, Dict, Int, List, TraitError, Unicode, validate

# The module the labextension registers (labextension/src/widgets.ts: MODULE_NAME/VERSION).
MODULE = "mlops-widgets"
MODULE_VERSION = "^0.1.0"

# A status value's tone: its badge's colour (labextension/style/base.css, .mlops-badge-*).
TONES = ("ok", "error", "warn", "neutral")

Cell = str | int | float | bool | None


def column(
    key: str,
    label: str,
    *,
    sort: str = "",
    tones: Mapping[str, str] | None = None,
    optional: bool = False,
) -> dict[str, Any]:
    """A column: `key` into the rows, its header `label`; `sort`: the row key it sorts on (a
    local time sorts on its ISO stamp); `tones`: value -> badge tone (a status column);
    `optional`: left out when the panel is narrow (what the picked row's details say again)."""
    spec: dict[str, Any] = {"key": key, "label": label}
    if sort:
        spec["sort"] = sort
    if optional:
        spec["optional"] = True
    if tones is not None:
        bad = sorted(set(tones.values()) - set(TONES))
        if bad:
            raise ValueError(f"column {key}: unknown tone {bad[0]!r} (one of {', '.join(TONES)})")
        spec["tones"] = dict(tones)
    return spec


class Table(w.DOMWidget):
    """Rows (each a dict with an `id` and a value per column key) under sortable headers."""

    _model_name = Unicode("TableModel").tag(sync=True)
    _view_name = Unicode("TableView").tag(sync=True)
    _model_module = Unicode(MODULE).tag(sync=True)
    _view_module = Unicode(MODULE).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    columns = List(Dict()).tag(sync=True)
    rows = List(Dict()).tag(sync=True)
    value = Unicode(None, allow_none=True, help="the selected row's id").tag(sync=True)
    sort_by = Unicode("", help="the key of the column sorted on").tag(sync=True)
    ascending = Bool(True).tag(sync=True)
    page = Int(0).tag(sync=True)
    page_size = Int(10).tag(sync=True)
    label = Unicode("", help="the table's accessible name").tag(sync=True)
    empty = Unicode("nothing to show", help="what an empty table says").tag(sync=True)

    def __init__(self, columns: Sequence[Mapping[str, Any]], *, label: str, **kwargs: Any) -> None:
        super().__init__(columns=[dict(c) for c in columns], label=label, **kwargs)

    @validate("rows")
    def _rows_are_data(self, proposal: Any) -> list[dict[str, Cell]]:
        """Each row has a text `id` (ids unique) and JSON scalars only: no markup, no objects."""
        rows = proposal["value"]
        seen: set[str] = set()
        for i, row in enumerate(rows):
            rid = row.get("id")
            if not isinstance(rid, str) or not rid:
                raise TraitError(f"table {self.label}: row {i} has no text id")
            if rid in seen:
                raise TraitError(f"table {self.label}: row id {rid!r} is given twice")
            seen.add(rid)
            for key, cell in row.items():
                if cell is not None and not isinstance(cell, str | int | float | bool):
                    raise TraitError(
                        f"table {self.label}: row {rid} column {key} holds a {type(cell).__name__}"
                    )
        return list(rows)

    @property
    def options(self) -> tuple[str, ...]:
        """The rows' ids: what `value` may be (the panel's shared selection reads it)."""
        return tuple(r["id"] for r in self.rows)

    def show(self, rows: Sequence[Mapping[str, Cell]], want: str | None) -> None:
        """New rows, keeping `want` selected when a row has it, else the first row (None: empty)."""
        self.rows = [dict(r) for r in rows]
        ids = self.options
        self.value = want if want in ids else (ids[0] if ids else None)

    def row(self, rid: str | None) -> dict[str, Cell] | None:
        """The row whose id is `rid`."""
        return next((r for r in self.rows if r["id"] == rid), None)
