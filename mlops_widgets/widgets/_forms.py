"""Form plumbing shared by the tabs: action buttons that say why they are disabled, and problems
from the config model shown beside the fields they name (by dotted path)."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ipywidgets as w

from mlops_widgets.widgets._hints import words
from mlops_widgets.widgets._style import fit, grow, span
from mlops_widgets.widgets._task import ORIGIN, error_text

ERROR = "mlops-error"
WARN = "mlops-warn"


def error_html(messages: Iterable[str], kind: str = ERROR, *, keys: bool = False) -> str:
    """Messages as lines coloured by the theme (`kind`: ERROR or WARN); a multi-line message,
    such as a ConfigError's, keeps its lines. Config keys are said as the panel's fields unless
    `keys` (problems of a YAML file, whose keys the reader wrote)."""
    items = [html.escape(m if keys else words(m)).replace("\n", "<br>") for m in messages if m]
    if not items:
        return ""
    return "".join(f"<div class='{kind}'>{m}</div>" for m in items)


def number_text(description: str, value: float | int | str = "", *, css: str = "", **kwargs: Any) -> w.Text:
    """A number typed as text: what was typed stays as typed (a field that rewrites 1.5 as 15,
    or snaps a cleared value back, misleads); `read_number` says whether it is a number."""
    field = w.Text(value=str(value), description=description, **{"layout": grow(), **kwargs})
    if css:
        field.add_class(css)
    return field


def read_number(
    text: str, *, integer: bool = False, low: float | None = None, high: float | None = None
) -> float | int:
    """The number in `text`; ValueError with the panel's words when it is none (or, with
    `integer`, `low`, `high`, not a whole number within them)."""
    raw = text.strip()
    if not raw:
        raise ValueError("give a number")
    try:
        number: float | int = int(raw)
    except ValueError:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{raw!r} is not a finite number") from None
    if integer and not float(number).is_integer():
        raise ValueError(f"give a whole number, not {raw}")
    if integer:
        number = int(number)
    if (low is not None and number < low) or (high is not None and number > high):
        span_text = (
            f"from {low:g} to {high:g}"
            if low is not None and high is not None
            else (f"at least {low:g}" if low is not None else f"at most {high:g}")
        )
        raise ValueError(f"give a number {span_text}, not {raw}")
    return number


def ok_html(message: str) -> str:
    return span("mlops-ok", message)


def section(title: str, note: str = "") -> w.HTML:
    """A sub-heading inside a tab, with an optional grey note."""
    extra = (
        f" <span class='mlops-muted' style='font-weight:normal'>{html.escape(note)}</span>" if note else ""
    )
    return w.HTML(f"<h4>{html.escape(title)}{extra}</h4>")


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

    def __init__(self, description: str, *, icon: str = "", css: str = "", style: str = "") -> None:
        self.button = w.Button(description=description, icon=icon, button_style=style, layout=fit())
        if css:
            self.button.add_class(css)
        self.reason = w.HTML()
        if css:
            self.reason.add_class(f"{css}-reason")
        self.widget = w.HBox([self.button, self.reason])

    def on_click(self, fn: Callable[[], None]) -> None:
        """Run `fn` on a click; an unexpected failure shows beside the button, not in a log."""

        def handler(_: w.Button) -> None:
            token = ORIGIN.set(self.widget)
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - the user sees it inline
                self.reason.value = error_html([error_text(exc)])
            finally:
                ORIGIN.reset(token)

        self.button.on_click(handler)

    def set_reason(self, reason: str | None) -> None:
        """Disable with `reason`, or enable when None."""
        self.button.disabled = reason is not None
        reason = words(reason) if reason else None
        self.button.tooltip = reason or ""
        self.reason.value = span("mlops-muted", reason) if reason else ""

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
    longest prefix of it; what matches no field goes to the form's general error list.

    A field given with its widget shows its errors only once the user changed it: a fresh form
    is not covered in red. `displayed` holds the problems shown beside a field, so an action's
    reason does not say them a second time (see `pending`)."""

    def __init__(self) -> None:
        self._fields: dict[tuple[str, ...], w.HTML] = {}
        self._initial: dict[tuple[str, ...], tuple[w.Widget, Any]] = {}
        self.displayed: set[str] = set()
        self._names: dict[tuple[str, ...], str] = {}
        self.readable: dict[str, str] = {}  # a problem's text -> the same naming the field's control

    def label(self, path: str, widget: w.Widget | None = None, name: str = "") -> w.HTML:
        """The error label for the field at `path` (created on first use); with the field's
        `widget`, its errors wait until its value differs from the one it started with. `name`:
        how messages name the field (default: the widget's description)."""
        key = tuple(_segments(path))
        if key not in self._fields:
            lbl = w.HTML()
            lbl.add_class("mlops-field-error")
            self._fields[key] = lbl
        if widget is not None:
            self._initial[key] = (widget, widget.value)
        if widget is not None or name:
            self._names[key] = name or str(getattr(widget, "description", "") or "")
        return self._fields[key]

    def _touched(self, key: tuple[str, ...]) -> bool:
        """Changed once by the user (then for good: emptied again still shows its error)."""
        if key not in self._initial:
            return True
        widget, initial = self._initial[key]
        if widget.value != initial:
            del self._initial[key]
            return True
        return False

    def touch_all(self) -> None:
        """Show every field's errors from now on (a form filled from a file)."""
        self._initial.clear()

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
            if self._touched(best):
                self.displayed.add(problem_text(p))
            control = self._names.get(best, "")
            if control:
                self.readable[problem_text(p)] = f"{control}: {per_field[best][-1]}"
        self.displayed &= {problem_text(p) for p in problems}
        for k, msgs in per_field.items():
            self._fields[k].value = error_html(msgs) if self._touched(k) else ""
        return rest


def pending(problems: Sequence[str], errors: FieldErrors) -> str | None:
    """What an action waits for, said once: the first problem not already shown beside its
    field, else a pointer to the fields; None when there is none."""
    if not problems:
        return None
    n = len(problems)
    hidden = [errors.readable.get(p, p) for p in problems if p not in errors.displayed]
    if hidden:
        return hidden[0] if n == 1 else f"{hidden[0]} (and {n - 1} more)"
    return "fix the problem marked above" if n == 1 else f"fix the {n} problems marked above"
