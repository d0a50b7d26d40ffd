"""A question asked through JupyterLab's dialog before a step that cannot be undone (delete a
deployment, re-run, remove a monitor): the step runs only on the dialog's OK; Cancel, Escape
or closing the dialog runs nothing.

The labextension's `ConfirmModel` shows the dialog wherever the panel's kernel is connected and
answers with a custom message. Title, body and items are sent as text, never HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w
from traitlets import Unicode

from mlops_widgets.widgets._table import MODULE, MODULE_VERSION
from mlops_widgets.widgets._task import ORIGIN


class ConfirmDialog(w.Widget):
    """Asks one question at a time; a new question replaces one left unanswered."""

    _model_name = Unicode("ConfirmModel").tag(sync=True)
    _model_module = Unicode(MODULE).tag(sync=True)
    _model_module_version = Unicode(MODULE_VERSION).tag(sync=True)
    _view_module = Unicode(MODULE).tag(sync=True)
    _view_module_version = Unicode(MODULE_VERSION).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._asked = 0
        self._then: Callable[[], None] | None = None
        self._origin: w.Widget | None = None
        self.question = ""  # what is being asked (title, body, items), as the dialog says it
        self.on_msg(self._message)

    @property
    def asking(self) -> bool:
        return self._then is not None

    def ask(
        self,
        title: str,
        body: str,
        ok: str,
        then: Callable[[], None],
        *,
        items: Sequence[str] = (),
        destructive: bool = True,
    ) -> None:
        """Show the dialog; `then()` runs on OK (the step shows beside the control that asked)."""
        self._asked += 1
        self._then = then
        self._origin = ORIGIN.get()
        self.question = "\n".join([title, body, *items])
        self.send(
            {
                "ask": self._asked,
                "title": title,
                "body": body,
                "items": list(items),
                "ok": ok,
                "destructive": destructive,
            }
        )

    def answer(self, ok: bool, asked: int | None = None) -> None:
        """The dialog's answer to question `asked` (default: the last one); a stale one is dropped."""
        if asked is not None and asked != self._asked:
            return
        then, self._then = self._then, None
        self.question = ""
        if ok and then is not None:
            token = ORIGIN.set(self._origin)
            try:
                then()
            finally:
                ORIGIN.reset(token)

    def _message(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and isinstance(content.get("answer"), int):
            self.answer(content.get("ok") is True, content["answer"])
