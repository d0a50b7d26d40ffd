"""YAML in and out, safely, keeping the line of every value.

PyYAML composes the document into nodes; we build plain Python values from those nodes
ourselves instead of calling a constructor, because that one walk lets us
- refuse every tag that is not plain YAML (`!!python/object...`, `!custom`): safe loading only;
- refuse duplicate keys (PyYAML silently keeps the last one);
- bound alias expansion (a "billion laughs" document is refused after a few thousand values,
  in milliseconds) and refuse recursive aliases;
- record the line of every path for the problems the validator reports.
Merge keys (`<<: *defaults`) keep working, within the same expansion bound.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mlops_widgets.config.problems import ConfigError, Problem, item_path, join_path
from mlops_widgets.errors import MlopsError, NotFoundError

MAX_BYTES = 1024 * 1024
"""A config file larger than this is refused before parsing (a real one is a few KB per entry)."""
MAX_ALIAS_VALUES = 20_000
"""Values a document may gain by expanding aliases (reusing a thresholds block in 100 entries
needs under 8,000)."""
MAX_DEPTH = 64
"""Nesting depth allowed (an entry is 6 deep)."""

_BRACKET = re.compile(r"[\[\]{}]")

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("null", "bool", "int", "float", "str", "timestamp")}
_MAP, _SEQ, _MERGE = _STD + "map", _STD + "seq", _STD + "merge"


class ParsedYaml(NamedTuple):
    """A parsed document: plain values, and the 1-based line of each path (see problems.py)."""

    data: Any
    lines: dict[str, int]


class _Abort(Exception):
    """The document cannot be walked further (alias bomb, recursion, depth)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, collecting problems as it goes."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self._seen: set[int] = set()
        self._active: set[int] = set()
        self._expanded = 0

    def _problem(self, path: str, message: str, node: Node) -> None:
        self.problems.append(Problem(path, message, _line(node)))

    def _count(self, node: Node, path: str) -> None:
        # A node met a second time is reached through an alias: count what aliases add.
        key = id(node)
        if key not in self._seen:
            self._seen.add(key)
            return
        self._expanded += 1
        if self._expanded > MAX_ALIAS_VALUES:
            raise _Abort(
                Problem(
                    path,
                    f"aliases expand the document beyond {MAX_ALIAS_VALUES} values "
                    "(an alias bomb?); write the values out or reuse fewer",
                    _line(node),
                )
            )

    def value(self, node: Node, path: str, depth: int = 0) -> Any:
        self._count(node, path)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if depth > MAX_DEPTH:
            raise _Abort(Problem(path, f"nested deeper than {MAX_DEPTH} levels", _line(node)))
        if id(node) in self._active:
            raise _Abort(Problem(path, "recursive alias (a value that contains itself)", _line(node)))
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode) and node.tag == _MAP:
                return self._mapping(node, path, depth)
            if isinstance(node, SequenceNode) and node.tag == _SEQ:
                return [self._item(child, item_path(path, i), depth) for i, child in enumerate(node.value)]
            self._bad_tag(node, path)
            return None
        finally:
            self._active.discard(id(node))

    def _item(self, node: Node, path: str, depth: int) -> Any:
        self.lines[path] = _line(node)
        return self.value(node, path, depth + 1)

    def _bad_tag(self, node: Node, path: str) -> None:
        self._problem(
            path,
            f"YAML tag '{_short_tag(node.tag)}' is not allowed: only plain YAML values "
            "(mappings, lists, strings, numbers, booleans, null) are read",
            node,
        )

    def _scalar(self, node: ScalarNode, path: str) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._bad_tag(node, path)
            return None
        try:
            return self.loader.yaml_constructors[node.tag](self.loader, node)
        except (yaml.YAMLError, ValueError) as exc:
            self._problem(path, f"not a valid {_short_tag(node.tag)} value: {exc}", node)
            return None

    def _pairs(self, node: MappingNode, path: str) -> tuple[list[tuple[Node, Node]], list[tuple[Node, Node]]]:
        """The mapping's own key/value nodes, and those it merges in (`<<`), in precedence order."""
        own: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not (isinstance(source, MappingNode) and source.tag == _MAP):
                    self._problem(path, "a merge key (<<) needs a mapping or a list of them", source)
                    continue
                if id(source) in self._active:
                    raise _Abort(Problem(path, "recursive merge (<<)", _line(source)))
                self._count(source, path)
                self._active.add(id(source))
                try:
                    inner_own, inner_merged = self._pairs(source, path)
                finally:
                    self._active.discard(id(source))
                merged += inner_own + inner_merged
        return own, merged

    def _key(self, node: Node, path: str) -> tuple[bool, Any]:
        if not isinstance(node, ScalarNode):
            self._problem(path, "a mapping key must be a plain value, not a list or mapping", node)
            return False, None
        before = len(self.problems)
        key = self._scalar(node, path)
        return len(self.problems) == before, key

    def _mapping(self, node: MappingNode, path: str, depth: int) -> dict[Any, Any]:
        own, merged = self._pairs(node, path)
        out: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for key_node, value_node in own:
            ok, key = self._key(key_node, path)
            if not ok:
                continue
            child = join_path(path, key)
            if key in out:
                self._problem(child, f"duplicate key '{key}' (first at line {first[key]})", key_node)
                continue
            first[key] = _line(key_node)
            self.lines[child] = _line(key_node)
            out[key] = self.value(value_node, child, depth + 1)
        for key_node, value_node in merged:
            ok, key = self._key(key_node, path)
            if ok and key not in out:
                child = join_path(path, key)
                self.lines[child] = _line(key_node)
                out[key] = self.value(value_node, child, depth + 1)
        return out


def _check_flow_depth(text: str, source: str) -> None:
    """Refuse deeply nested `[`/`{` before PyYAML's scanner, which slows quadratically with
    flow depth (1,000 levels take seconds). Brackets inside quoted strings count too, so this
    over-estimates; no real config comes near the bound."""
    depth = 0
    for match in _BRACKET.finditer(text):
        if match[0] in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise ConfigError(
                    [Problem("", f"invalid YAML: nested deeper than {MAX_DEPTH} levels", line)],
                    source,
                )
        elif depth:
            depth -= 1


def load_yaml_text(text: str, source: str = "<string>") -> ParsedYaml:
    """Parse YAML text safely into plain values with the line of each path.

    An empty document gives `data=None`. Raises ConfigError (every tag, duplicate-key and
    syntax problem found) when the text cannot be read safely.
    """
    _check_flow_depth(text, source)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # a control character: the reader checks them all up front
        raise ConfigError([Problem("", f"invalid YAML: {exc}".split("\n")[0])], source) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            detail = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            raise ConfigError(
                [Problem("", f"invalid YAML: {detail}", mark.line + 1 if mark else None)], source
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem("", f"invalid YAML: {exc}")], source) from None
        except RecursionError:
            raise ConfigError([Problem("", "invalid YAML: nested too deeply")], source) from None
        if node is None:
            return ParsedYaml(None, {})
        builder = _Builder(loader)
        builder.lines[""] = _line(node)
        try:
            data = builder.value(node, "")
        except _Abort as abort:
            raise ConfigError([*builder.problems, abort.problem], source) from None
        if builder.problems:
            raise ConfigError(builder.problems, source)
        return ParsedYaml(data, builder.lines)
    finally:
        loader.dispose()


def read_yaml_file(path: str | Path) -> ParsedYaml:
    """Read and parse a YAML file; a missing, oversized or non-UTF-8 file is a user error."""
    file = Path(path)
    source = str(path)
    if not file.exists():
        raise NotFoundError(f"config file {source} does not exist")
    if not file.is_file():
        raise MlopsError(f"config file {source} is not a file")
    size = file.stat().st_size
    if size > MAX_BYTES:
        raise MlopsError(
            f"config file {source} is {size} bytes; a deployment metadata file is at most {MAX_BYTES} bytes"
        )
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MlopsError(f"config file {source} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise MlopsError(f"cannot read config file {source}: {exc.strerror}") from None
    return load_yaml_text(text, source)


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors: a file a person edits, not a serialisation."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(tuple, _Dumper.represent_list)


def dump_yaml(obj: Any) -> str:
    """YAML text of `obj` in block style, keys in their order, the way the original wrote files."""
    return yaml.dump(
        obj,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
