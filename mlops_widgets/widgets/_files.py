"""A path field with a small folder browser, built from plain ipywidgets.

Paths are shown relative to the notebook's folder (the kernel's working directory) so a notebook
and its inputs can move together; the browser lists a folder only when opened, keeping the
panel's first render cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w

from mlops_widgets.widgets._style import LABEL, code, fit, grow, name_only, span

UP = "../"


def display_path(path: Path, base: Path) -> str:
    """`path` relative to `base` when inside it, else absolute."""
    try:
        rel = path.resolve().relative_to(base.resolve())
    except ValueError:
        return str(path.resolve())
    return str(rel) if str(rel) != "." else "."


class PathField:
    """A Text for a file or folder path, a Browse toggle and a folder listing.

    Picking a folder in the listing opens it; picking a file fills the Text; "Use this folder"
    fills the Text with the listed folder (a model may be a folder).
    """

    def __init__(
        self,
        description: str,
        *,
        base: Path | None = None,
        placeholder: str = "",
        on_change: Callable[[], object] | None = None,  # its result is not used
        css: str = "",
    ) -> None:
        self.base = base or Path.cwd()
        self.text = w.Text(
            description=description,
            placeholder=placeholder,
            continuous_update=True,
            layout=grow(20, 40),
            style=LABEL,
        )
        if css:
            self.text.add_class(css)
        self.browse = w.ToggleButton(description="Browse…", layout=fit())
        self.listing = name_only(w.Select(rows=8, layout=grow(20, 40)), f"{description}: files")
        self.here = w.HTML()
        self.use_folder = w.Button(description="Use this folder", layout=fit())
        self.chooser = w.VBox([self.here, self.listing, self.use_folder], layout=w.Layout(display="none"))
        self.widget = w.VBox([w.HBox([self.text, self.browse]), self.chooser])
        if css:
            self.widget.add_class(f"{css}-field")
        self._folder = self.base
        self._filling = False
        self.browse.observe(self._toggle, "value")
        self.listing.observe(self._picked, "value")
        self.use_folder.on_click(lambda _: self._set(self._folder))
        if on_change:
            self.text.observe(lambda _: on_change(), "value")

    @property
    def value(self) -> str:
        return self.text.value.strip()

    @value.setter
    def value(self, v: str) -> None:
        self.text.value = v

    def resolved(self) -> Path | None:
        """The path as the kernel sees it (relative to the notebook's folder), or None if empty."""
        if not self.value:
            return None
        p = Path(os.path.expanduser(self.value))
        return p if p.is_absolute() else self.base / p

    def _set(self, path: Path) -> None:
        self.text.value = display_path(path, self.base)
        self.browse.value = False

    def _toggle(self, change: dict) -> None:
        if change["new"]:
            start = self.resolved()
            if start is not None and start.is_file():
                start = start.parent
            self._open(start if start is not None and start.is_dir() else self.base)
            self.chooser.layout.display = ""
        else:
            self.chooser.layout.display = "none"

    def _open(self, folder: Path) -> None:
        self._folder = folder.resolve()
        try:
            children = sorted(self._folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
        except OSError as exc:
            self.here.value = span("mlops-error", f"cannot list {self._folder}: {exc.strerror}")
            return
        names = [UP] + [c.name + ("/" if c.is_dir() else "") for c in children if not c.name.startswith(".")]
        self._filling = True
        try:
            self.listing.options = names
            self.listing.value = None
        finally:
            self._filling = False
        self.here.value = code(display_path(self._folder, self.base))

    def _picked(self, change: dict) -> None:
        name = change["new"]
        if self._filling or not name:
            return
        if name == UP:
            self._open(self._folder.parent)
        elif name.endswith("/"):
            self._open(self._folder / name[:-1])
        else:
            self._set(self._folder / name)
