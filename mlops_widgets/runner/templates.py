"""Template discovery and the parameters cell: what a template takes, read without a kernel.

Read with `json` and `ast` only (no nbformat, no papermill), so `mlops templates list` and the
panel's forms cost milliseconds.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import math
import os
import tokenize
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import mlops_widgets
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.secret_names import is_secret_name

PACKAGE_DIR = Path(mlops_widgets.__file__).resolve().parent
# Wheel first (pyproject force-includes templates/ there), then the editable checkout's folder.
TEMPLATE_DIRS = (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates")

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


@dataclass(frozen=True)
class Parameter:
    """One assignment of a template's parameters cell."""

    name: str
    type: str  # "str", "int", "float", "bool", "list", "dict", "any", each maybe "| None"
    default: Any  # the literal default; None when the default is code (see default_source)
    default_source: str
    help: str
    secret: bool
    choices: tuple[Any, ...] | None = None  # from a `Literal[...]` annotation

    @property
    def base_type(self) -> str:
        return self.type.removesuffix(" | None")

    @property
    def nullable(self) -> bool:
        return self.type.endswith(" | None") or self.type == "any"

    def check(self, value: Any) -> Any:
        """`value` converted to this parameter's type (tuples to lists, paths to str, ints to
        float); MlopsError naming the parameter and both types when it does not fit."""
        label = f"parameter {self.name!r}"
        if value is None:
            if self.nullable:
                return None
            raise MlopsError(f"{label} must be {self.base_type}, not None")
        base = self.base_type
        if base == "str" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if base != "any":
            ok = isinstance(value, _TYPES[base]) and not (
                isinstance(value, bool) and base in ("int", "float")
            )
            if not ok:
                raise MlopsError(f"{label} must be {self.type}, got {type(value).__name__} {_short(value)}")
            if base == "float":
                value = float(value)
                if not math.isfinite(value):
                    raise MlopsError(f"{label} must be a finite number, got {value}")
            elif base == "list":
                value = list(value)
        if self.choices is not None and value not in self.choices:
            raise MlopsError(f"{label} must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise MlopsError(f"{label} must be plain data (JSON-like): {exc}") from None
        return value

    def coerce(self, text: str) -> Any:
        """A command-line string as a value: verbatim for str, YAML otherwise (`-p n 3`,
        `-p flags '[a, b]'`, `-p resource_configs '{n_cpus: 2}'`); `null` gives None."""
        if self.base_type == "str" and not (self.nullable and text in ("null", "~")):
            return text
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MlopsError(f"parameter {self.name!r}: {text!r} is not valid YAML: {exc}") from None
        return self.check(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "default_source": self.default_source,
            "help": self.help,
            "secret": self.secret,
            "choices": list(self.choices) if self.choices is not None else None,
        }


@dataclass(frozen=True)
class Template:
    """A template notebook on disk; parsed on first use of its parameters or steps."""

    path: Path
    name: str = field(default="")

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.path.stem)

    @cached_property
    def raw(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise MlopsError(f"template {self.path}: cannot be read: {exc.strerror}") from None

    @cached_property
    def notebook(self) -> dict[str, Any]:
        try:
            nb = json.loads(self.raw)
        except ValueError as exc:
            raise MlopsError(f"template {self.path} is not a notebook (invalid JSON: {exc})") from None
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise MlopsError(f"template {self.path} is not a notebook (no cells)")
        return nb

    @property
    def hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    @cached_property
    def parameters(self) -> dict[str, Parameter]:
        cell = next((c for c in self.notebook["cells"] if "parameters" in _tags(c)), None)
        if cell is None:
            return {}
        return parse_parameters(_source(cell), where=f"template {self.name}")

    @property
    def secret_names(self) -> list[str]:
        return [p.name for p in self.parameters.values() if p.secret]

    @cached_property
    def steps(self) -> list[str]:
        """The markdown headings, in order: what the template does, step by step."""
        return [h for c in self.notebook["cells"] if (h := cell_heading(c))]

    @property
    def description(self) -> str:
        """The template's first markdown heading (its title), without a leading `<name>:` (the
        templates' titles start with their name, which listings already show)."""
        title = self.steps[0] if self.steps else ""
        head, sep, rest = title.partition(":")
        return rest.strip() if sep and head.strip() == self.name else title

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "hash": self.hash,
            "description": self.description,
            "steps": self.steps,
            "parameters": [p.to_dict() for p in self.parameters.values()],
        }


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cell_heading(cell: dict[str, Any]) -> str | None:
    """The first markdown heading of a markdown cell (without its #s), else None."""
    if cell.get("cell_type") != "markdown":
        return None
    for line in _source(cell).splitlines():
        if line.lstrip().startswith("#"):
            return line.lstrip().lstrip("#").strip() or None
    return None


def _literal_choices(node: ast.expr) -> tuple[Any, ...] | None:
    """The values of a `Literal["a", "b"]` annotation, else None."""
    if not (isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("Literal")):
        return None
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return tuple(ast.literal_eval(item) for item in items)


def _annotation_type(node: ast.expr, where: str) -> str:
    """`str`, `dict[str, Any]`, `int | None`, `Optional[float]`, `Literal["a", "b"]` -> our type
    names."""
    choices = _literal_choices(node)
    if choices:
        kinds = {type(c).__name__ for c in choices}
        if len(kinds) == 1 and (kind := kinds.pop()) in _TYPES:
            return kind
        raise MlopsError(f"{where}: a Literal annotation needs values of one plain type")
    text = ast.unparse(node).replace("typing.", "").replace(" ", "")
    nullable = False
    if text.startswith("Optional[") and text.endswith("]"):
        text, nullable = text[len("Optional[") : -1], True
    parts = [p for p in text.split("|") if p]
    if "None" in parts:
        parts.remove("None")
        nullable = True
    if len(parts) == 1:
        base = parts[0].split("[", 1)[0].lower()
        if base in _TYPES or base == "any":
            return base if base == "any" or not nullable else f"{base} | None"
    raise MlopsError(f"{where}: unsupported parameter annotation {ast.unparse(node)!r}")


def _comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment on that line."""
    found: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return found


def _help_for(node: ast.stmt, lines: list[str], comments: dict[int, str]) -> str:
    """The comment at the end of the assignment's first or last line, else the comment lines
    right above it (for multi-line defaults such as a thresholds dict)."""
    for lineno in (node.lineno, node.end_lineno or node.lineno):
        if lineno in comments:
            return comments[lineno]
    above: list[str] = []
    lineno = node.lineno - 1
    while lineno >= 1 and lines[lineno - 1].lstrip().startswith("#"):
        above.insert(0, comments.get(lineno, ""))
        lineno -= 1
    return " ".join(a for a in above if a)


def parse_parameters(source: str, *, where: str = "parameters cell") -> dict[str, Parameter]:
    """Each top-level `name = default  # help` (or `name: type = default`) of a parameters cell.

    Imports and other statements are allowed (a default may be code, e.g. a bundled example's
    path); such a default has `default` None and its text in `default_source`.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise MlopsError(f"{where}: the parameters cell is not valid Python: {exc}") from None
    lines = source.splitlines()
    comments = _comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value, annotation = node.targets[0].id, node.value, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value, annotation = node.target.id, node.value, node.annotation
        else:
            continue
        help_text = _help_for(node, lines, comments)
        secret = is_secret_name(name) or help_text.lower().startswith("secret")
        if secret and help_text.lower().startswith("secret"):
            help_text = help_text[len("secret") :].lstrip(" :-").strip()
        try:
            default, literal = ast.literal_eval(value), True
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            default, literal = None, False
        if secret and literal and default not in ("", None):
            # Only given secrets are scrubbed: a default value would be stored and printed as is.
            raise MlopsError(
                f"{where}: secret parameter {name!r} has a default value; a secret's default must be "
                f'empty ({name} = "" or None): give its value to each run as a secret, or from the '
                f"environment ($MLOPS_SECRET_{name})"
            )
        choices = _literal_choices(annotation) if annotation is not None else None
        if annotation is not None:
            type_name = _annotation_type(annotation, f"{where}, parameter {name!r}")
        elif not literal or default is None:
            type_name = "any"
        else:
            type_name = next(
                (
                    t
                    for t in ("bool", "int", "float", "str", "list", "dict")
                    if isinstance(default, _TYPES[t])
                ),
                "any",
            )
            if isinstance(default, tuple):
                default = list(default)
        params[name] = Parameter(
            name=name,
            type=type_name,
            default=default if literal else None,
            default_source=ast.get_source_segment(source, value) or ast.unparse(value),
            help=help_text,
            secret=secret,
            choices=choices,
        )
    return params


def list_templates() -> list[Template]:
    """The templates shipped with the package, by name (a wheel's copy wins over a checkout's)."""
    found: dict[str, Template] = {}
    for folder in TEMPLATE_DIRS:
        if folder.is_dir():
            for path in sorted(folder.glob("*.ipynb")):
                found.setdefault(path.stem, Template(path))
    return [found[name] for name in sorted(found)]


def get_template(template: str | os.PathLike[str] | Template) -> Template:
    """A shipped template by name (`A_MLOps_Pipeline`, `.ipynb` optional), or a notebook path."""
    if isinstance(template, Template):
        return template
    text = os.fspath(template)
    path = Path(text).expanduser()
    if text.endswith(".ipynb") and (path.is_file() or os.sep in text):
        if not path.is_file():
            raise NotFoundError(f"template notebook {path} does not exist")
        return Template(path.resolve())
    name = text.removesuffix(".ipynb")
    available = list_templates()
    for t in available:
        if t.name == name:
            return t
    names = ", ".join(t.name for t in available) or "none found"
    raise NotFoundError(f"no template named {name!r}: available templates are {names}")
