"""Field kinds: each knows how to check a value (normalizing it) and how to describe itself as
JSON Schema, so the validator and the exported schema come from one definition.

Checking never stops at the first problem: a kind records each problem with its path in the
`Checker` and returns the normalized value (or the value unchanged when it is wrong).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops_widgets.config.problems import Problem, item_path, join_path, line_of
from mlops_widgets.monitors.definitions import BUILTIN, MonitorDefinition

NO_DEFAULT: Any = object()
# Every number in an entry is bounded before it is converted (to a float, to text): a whole
# number of 4,000 digits is a problem of the entry, not an OverflowError.
LARGEST = 10**15


def show(value: object) -> str:
    """A value as a user wrote it in YAML, with its kind: `'7' (a string)`, `true (a boolean)`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, int) and abs(value) > LARGEST:
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{value} (a {type(value).__name__})"


def suggest(word: object, choices: Sequence[str]) -> str | None:
    """The closest choice to `word` (a case-only difference first), or None."""
    text = str(word)
    for choice in choices:
        if choice.lower() == text.lower():
            return choice
    close = difflib.get_close_matches(text, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown(what: str, word: object, choices: Sequence[str]) -> str:
    """`unknown key 'n_cpu'; did you mean 'n_cpus'?`, else the list of what is allowed."""
    hint = suggest(word, choices)
    if hint is not None:
        return f"unknown {what} {str(word)!r}; did you mean {hint!r}?"
    return f"unknown {what} {str(word)!r} (allowed: {', '.join(choices)})"


class Checker:
    """Collects problems while an entry is checked; carries the monitor definition in scope."""

    __slots__ = ("problems", "lines", "definition", "_definitions")

    def __init__(
        self,
        lines: Mapping[str, int] | None,
        definitions: Mapping[str, MonitorDefinition] | None = None,
    ) -> None:
        self.problems: list[Problem] = []
        self.lines = lines
        self.definition: MonitorDefinition | None = None
        self._definitions = definitions

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, line_of(path, self.lines), "error"))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, line_of(path, self.lines), "warning"))

    def definitions(self) -> Mapping[str, MonitorDefinition]:
        """The monitor definitions entries may use: those given, else the built-in ones."""
        return BUILTIN if self._definitions is None else self._definitions

    @property
    def count(self) -> int:
        return len(self.problems)


@dataclass
class SchemaContext:
    """What schema generation needs beyond the kinds: definitions in scope and shared $defs."""

    definitions: Mapping[str, MonitorDefinition]
    definition: MonitorDefinition | None = None
    defs: dict[str, dict[str, Any]] = field(default_factory=dict)


class Kind(Protocol):
    """A value type: `expect` names it in messages and docs."""

    @property
    def expect(self) -> str: ...

    def check(self, value: Any, path: str, ck: Checker) -> Any: ...

    def schema(self, sc: SchemaContext) -> dict[str, Any]: ...


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bounded(value: object) -> bool:
    """A number within ±LARGEST (not NaN nor infinite): safe to convert to a float."""
    return _is_number(value) and -LARGEST <= value <= LARGEST  # type: ignore[operator]


def _size(value: object) -> str:
    """What a message adds for a number too large to be a setting."""
    finite = _is_int(value) or (isinstance(value, float) and math.isfinite(value))
    return f", at most {LARGEST:.0e} in size" if finite else ""


@dataclass(frozen=True)
class Text:
    """A non-blank string, optionally with a pattern (explained by `rule`) and a maximum length."""

    pattern: str | None = None
    rule: str = ""
    max_length: int | None = None
    expect: str = "a non-empty string"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, str):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
        elif not value.strip():
            ck.error(path, "must not be empty")
        elif self.max_length is not None and len(value) > self.max_length:
            ck.error(path, f"is {len(value)} characters long; at most {self.max_length} allowed")
        elif self.pattern is not None and not re.fullmatch(self.pattern, value):
            ck.error(path, f"{self.rule}, got {value!r}")
        return value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": r"\S"}
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern})$"
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        return out


@dataclass(frozen=True)
class RelPath:
    """A folder relative to a storage volume's root that cannot leave it: no leading `/`, `\\`
    or drive letter, and no `..` segment."""

    expect: str = "a relative path inside the volume"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, str):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
        elif not value.strip():
            ck.error(path, "must not be empty")
        elif value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value):
            ck.error(path, f"must be relative to the volume's root, got absolute path {value!r}")
        elif ".." in re.split(r"[/\\]", value):
            ck.error(path, f"must stay inside the volume ('..' is not allowed), got {value!r}")
        return value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": 1,
            "pattern": r"^(?![/\\])(?![A-Za-z]:)(?!(?:.*[/\\])?\.\.(?:[/\\]|$))\s*\S",
        }


@dataclass(frozen=True)
class Integer:
    """A whole number (booleans and 7.0 refused) at least `minimum` (and at most `maximum` when
    given), or one of `also`."""

    minimum: int
    also: tuple[int, ...] = ()
    unit: str = ""
    maximum: int | None = None

    @property
    def expect(self) -> str:
        if self.maximum is not None:
            text = f"an integer from {self.minimum} to {self.maximum}"
        else:
            text = f"an integer >= {self.minimum}" if self.minimum != 1 else "a positive integer"
        if self.unit:
            text += f" ({self.unit})"
        return text + "".join(f" or {v}" for v in self.also)

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        in_range = (
            _is_int(value)
            and _bounded(value)
            and value >= self.minimum
            and (self.maximum is None or value <= self.maximum)
        )
        if not in_range and not (_is_int(value) and value in self.also):
            tail = _size(value) if self.maximum is None and _is_int(value) and not _bounded(value) else ""
            ck.error(path, f"must be {self.expect}{tail}, got {show(value)}")
        return value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        base = {"type": "integer", "minimum": self.minimum}
        if self.maximum is not None:
            base["maximum"] = self.maximum
        if not self.also:
            return base
        return {"anyOf": [base, *({"const": v} for v in self.also)]}


@dataclass(frozen=True)
class Number:
    """A finite number greater than zero (booleans, .nan and .inf refused)."""

    unit: str = ""

    @property
    def expect(self) -> str:
        return "a number > 0" + (f" ({self.unit})" if self.unit else "")

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not _bounded(value) or value <= 0:
            tail = _size(value) if _is_number(value) and value > 0 else ""
            ck.error(path, f"must be {self.expect}{tail}, got {show(value)}")
        return value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        return {"type": "number", "exclusiveMinimum": 0}


# A schedule's repeat: a whole number and a unit (s, m, h, d), as `every: 30m` in an entry.
EVERY_PATTERN = r"[1-9][0-9]{0,5}[smhd]"
EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def every_seconds(every: str) -> int:
    """Seconds of a valid `every` value ("30m" -> 1800); a ValueError for anything else."""
    if not isinstance(every, str) or not re.fullmatch(EVERY_PATTERN, every):
        raise ValueError(f"a repeat is a whole number and a unit s, m, h or d (e.g. 30m), got {every!r}")
    return int(every[:-1]) * EVERY_UNITS[every[-1]]


FLAG_STRINGS = {"True": True, "False": False, "true": True, "false": False}


@dataclass(frozen=True)
class Flag:
    """A boolean, or the strings 'True'/'False' the original wrote; parsed to a bool, never
    read by truthiness (the original enabled GPUs for 'False')."""

    expect: str = "true or false (or the string 'True' or 'False')"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in FLAG_STRINGS:
            return FLAG_STRINGS[value]
        ck.error(path, f"must be {self.expect}, got {show(value)}")
        return value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        return {"anyOf": [{"type": "boolean"}, {"enum": list(FLAG_STRINGS)}]}


@dataclass(frozen=True)
class Facts:
    """A mapping kept as written (names to values a tool recorded, e.g. a training job's
    parameters and metrics): checked to be a mapping with string keys, nothing more."""

    expect: str = "a mapping of names to values"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
        return value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        return {"type": "object"}


DIRECTIONS = ("lower", "upper")


@dataclass(frozen=True)
class Limit:
    """`[value, 'lower'|'upper']`: a finite number and the side on which it limits."""

    expect: str = "a list [number, 'lower' or 'upper']"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, list | tuple):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
            return value
        if len(value) != 2:
            ck.error(path, f"must be {self.expect}: 2 items, got {len(value)}")
            return value
        number, direction = value
        ok = True
        if not _bounded(number):
            ck.error(item_path(path, 0), f"must be a finite number{_size(number)}, got {show(number)}")
            ok = False
        if direction not in DIRECTIONS:
            hint = suggest(direction, DIRECTIONS) if isinstance(direction, str) else None
            tail = f"; did you mean {hint!r}?" if hint else ""
            ck.error(item_path(path, 1), f"must be 'lower' or 'upper', got {show(direction)}{tail}")
            ok = False
        return [float(number), direction] if ok else value

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        return {
            "type": "array",
            "prefixItems": [{"type": "number"}, {"enum": list(DIRECTIONS)}],
            "items": False,
            "minItems": 2,
            "maxItems": 2,
        }


@dataclass(frozen=True)
class Field:
    """One key of a record. `nullable`: null allowed (the workflow fills it later; absent means
    null too). `default`: what consumers use when the key is absent (documented, not filled)."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    nullable: bool = False
    default: Any = NO_DEFAULT
    aliases: tuple[str, ...] = ()


Rule = Callable[[dict[str, Any], dict[str, tuple[str, str]], "Checker"], None]
"""A check across fields: (valid values by field name, (key as written, its path) by field
name, checker)."""


@dataclass(frozen=True)
class Record:
    """A mapping with a fixed set of keys; unknown keys are errors with a suggestion."""

    fields: tuple[Field, ...]
    expect: str = "a mapping"
    rules: tuple[Rule, ...] = ()
    rules_doc: str = ""
    by_key: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = {f.name: f for f in self.fields}
        keys.update({alias: f for f in self.fields for alias in f.aliases})
        object.__setattr__(self, "by_key", keys)  # frozen: set once, here

    @property
    def keys(self) -> list[str]:
        """Every key accepted, aliases included."""
        return list(self.by_key)

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, Mapping):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
            return value
        by_key = self.by_key
        given: dict[str, tuple[str, str, Any]] = {}  # field name -> (key as written, path, value)
        for key, item in value.items():
            key_path = join_path(path, key)
            known = by_key.get(key) if isinstance(key, str) else None
            if known is None:
                ck.error(key_path, unknown("key", key, [f.name for f in self.fields]))
            elif known.name in given:
                other = given[known.name][0]
                ck.error(
                    key_path,
                    f"{key!r} and {other!r} both set {known.name!r} "
                    f"({', '.join(known.aliases)} is an alias of {known.name}); keep one",
                )
            else:
                given[known.name] = (key, key_path, item)
        out: dict[str, Any] = {}
        valid: dict[str, tuple[str, str]] = {}
        for f in self.fields:
            if f.name not in given:
                if f.required:
                    ck.error(join_path(path, f.name), f"missing required key {f.name!r}")
                elif f.nullable:
                    out[f.name] = None
                continue
            key, key_path, item = given[f.name]
            if item is None:
                out[f.name] = None
                if not f.nullable:
                    ck.error(key_path, f"must be {f.kind.expect}, got null")
                continue
            if f.nullable and isinstance(item, str) and not item.strip():
                out[f.name] = item
                ck.error(key_path, "must not be empty (write null while the value is not known)")
                continue
            before = ck.count
            out[f.name] = f.kind.check(item, key_path, ck)
            if ck.count == before:
                valid[f.name] = (key, key_path)
        for rule in self.rules:
            rule({k: out[k] for k in valid}, valid, ck)
        return out

    def blank(self) -> dict[str, Any]:
        """The record with its workflow-filled keys null and its required records blank."""
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.nullable:
                out[f.name] = None
            elif f.required:
                out[f.name] = f.kind.blank() if isinstance(f.kind, Record) else {}
        return out

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        props: dict[str, Any] = {}
        for f in self.fields:
            props[f.name] = field_schema(f, sc)
            for alias in f.aliases:
                props[alias] = {
                    **field_schema(f, sc),
                    "description": f"Alias of {f.name} (the seed's name). {f.description}",
                }
        out: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        return out


def field_schema(f: Field, sc: SchemaContext) -> dict[str, Any]:
    """A field's kind schema with its description, default and null-ability."""
    out = dict(f.kind.schema(sc))
    if f.nullable:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    description = f.description
    if isinstance(f.kind, Record) and f.kind.rules_doc:
        description += " " + f.kind.rules_doc
    out["description"] = description
    if f.default is not NO_DEFAULT:
        out["default"] = f.default
    return out
