"""Form plumbing shared by the tabs: action buttons that say why they are disabled, and problems
from the config model shown beside the fields they name (by dotted path)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ipywidgets as w

from mlops_widgets.widgets._task import error_text

ERROR_COLOR = "#b00020"
OK_COLOR = "#1b5e20"
WARN_COLOR = "#8a6d00"


def error_html(messages: Iterable[str], color: str = ERROR_COLOR) -> str:
    """Messages as coloured lines (a multi-line message, such as a ConfigError's, keeps its lines)."""
    items = [html.escape(m).replace("\n", "<br>") for m in messages if m]
    if not items:
        return ""
    return "".join(f"<div style='color:{color}'>{m}</div>" for m in items)


def ok_html(message: str) -> str:
    return f"<span style='color:{OK_COLOR}'>{html.escape(message)}</span>"


def section(title: str, note: str = "") -> w.HTML:
    """A sub-heading inside a tab, with an optional grey note."""
    extra = f" <span style='color:#666;font-weight:normal'>{html.escape(note)}</span>" if note else ""
    return w.HTML(f"<h4 style='margin:8px 0 2px 0'>{html.escape(title)}{extra}</h4>")


def set_options(dropdown: w.Dropdown, options: Sequence[Any], want: Any, *, last: bool = False) -> None:
    """Replace a list's options keeping `want` picked when still offered, else the first (or
    `last`) option: a list that just gained its first item shows it rather than nothing."""
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    dropdown.options = list(options)
    if want in values:
        dropdown.value = want
    elif values:
        dropdown.value = values[-1] if last else values[0]


class Action:
    """A button that is disabled while its form is invalid, with the reason written beside it."""

    def __init__(
        self, description: str, *, icon: str = "", css: str = "", style: str = "", width: str = ""
    ) -> None:
        self.button = w.Button(description=description, icon=icon, button_style=style)
        if width:
            self.button.layout.width = width
        if css:
            self.button.add_class(css)
        self.reason = w.HTML()
        if css:
            self.reason.add_class(f"{css}-reason")
        self.widget = w.HBox([self.button, self.reason])

    def on_click(self, fn: Callable[[], None]) -> None:
        """Run `fn` on a click; an unexpected failure shows beside the button, not in a log."""

        def handler(_: w.Button) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - the user sees it inline
                self.reason.value = error_html([error_text(exc)])

        self.button.on_click(handler)

    def set_reason(self, reason: str | None) -> None:
        """Disable with `reason`, or enable when None."""
        self.button.disabled = reason is not None
        self.button.tooltip = reason or ""
        self.reason.value = (
            f"<span style='color:#666'>{html.escape(reason)}</span>" if reason else ""
        )

    @property
    def disabled(self) -> bool:
        return bool(self.button.disabled)


# One segment of a config problem's path: `name`, `[3]` or `["odd key"]` (config.problems).
_SEGMENT = re.compile(r'\[\d+\]|\["(?:[^"\\]|\\.)*"\]|[^.\[]+')


def _segments(path: str) -> list[str]:
    """`a.b[1].c` -> ['a', 'b', '[1]', 'c'] so prefixes match on whole segments."""
    return _SEGMENT.findall(path)


def problem_path(problem: Any) -> str:
    return str(getattr(problem, "path", "") or "")


def problem_text(problem: Any) -> str:
    """A problem as one line: its path (when it has one) and message."""
    path = problem_path(problem)
    message = str(getattr(problem, "message", problem))
    return f"{path}: {message}" if path else message


class FieldErrors:
    """Routes problems (each with a dotted path) to the error label of the field whose path is the
    longest prefix of it; what matches no field goes to the form's general error list."""

    def __init__(self) -> None:
        self._fields: dict[tuple[str, ...], w.HTML] = {}

    def label(self, path: str) -> w.HTML:
        """The error label for the field at `path` (created on first use)."""
        key = tuple(_segments(path))
        if key not in self._fields:
            lbl = w.HTML()
            lbl.add_class("mlops-field-error")
            self._fields[key] = lbl
        return self._fields[key]

    def forget(self, prefix: str) -> None:
        """Drop the labels under `prefix` (a removed monitor's fields)."""
        key = tuple(_segments(prefix))
        for k in [k for k in self._fields if k[: len(key)] == key]:
            del self._fields[k]

    def show(self, problems: Iterable[Any]) -> list[Any]:
        """Write each problem beside its field; returns the problems no field took."""
        per_field: dict[tuple[str, ...], list[str]] = {k: [] for k in self._fields}
        rest: list[Any] = []
        for p in problems:
            segs = tuple(_segments(problem_path(p)))
            best = None
            for k in self._fields:
                if segs[: len(k)] == k and (best is None or len(k) > len(best)):
                    best = k
            if best is None:
                rest.append(p)
                continue
            msg = str(getattr(p, "message", p))
            tail = ".".join(segs[len(best) :]).replace(".[", "[")
            per_field[best].append(f"{tail}: {msg}" if tail else msg)
        for k, msgs in per_field.items():
            self._fields[k].value = error_html(msgs)
        return rest
