"""Secrets: they reach a template's kernel only through its environment, and are scrubbed from
everything the runner saves.

Papermill writes every parameter as a literal into the notebook and into its metadata; the
original workflow wrote credentials into notebooks and kernel files. Here a secret parameter's
injected value is `secret("<name>")`, code that reads `$MLOPS_SECRET_<name>` in the kernel, and
every string value of the executed notebook, the run record and the results is scrubbed of each
secret value before anything touches the disk. Only values are rewritten, never keys or the
notebook's own structure (cell types, ids, output types, numbers): rewriting those corrupts the
notebook. What a value scrub cannot reach (a secret in a key or a number) is found by a last
check of the serialized text and the output or cell holding it is replaced by a note.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from functools import cache
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.masking import Masker, is_credential, url_credentials

SECRET_ENV_PREFIX = "MLOPS_SECRET_"
# Shorter values cannot be told apart from the rest of a notebook (a secret "1" is in every
# execution count); an ambient variable's value must be longer still to be taken for a credential.
MIN_SECRET_LENGTH = 4
MIN_AMBIENT_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Values of the notebook format itself, kept as they are by the scrub (they are no secret's use).
_CELL_STRUCTURE = frozenset({"cell_type", "id", "execution_count", "outputs"})
_OUTPUT_STRUCTURE = frozenset({"output_type", "name", "execution_count", "data"})
LEAK_NOTE = (
    "[mlops] removed from the saved notebook: it still held a secret value after scrubbing "
    "(in a key or a number, which cannot be masked without corrupting the notebook)"
)


def env_name(name: str) -> str:
    """The kernel environment variable carrying secret `name` (case kept: names are identifiers)."""
    if not _NAME.match(name):
        raise MlopsError(f"secret name {name!r} must be an identifier (letters, digits, _)")
    return SECRET_ENV_PREFIX + name


def from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret's value from the caller's environment: $MLOPS_SECRET_<name>, $<name>, $<NAME>."""
    env = os.environ if environ is None else environ
    for key in (SECRET_ENV_PREFIX + name, name, name.upper()):
        if env.get(key):
            return env[key]
    return None


def ambient_secrets(
    environ: Mapping[str, str] | None = None, min_length: int = MIN_AMBIENT_LENGTH
) -> list[str]:
    """Values of the environment variables named like credentials (USER_ACCESS_TOKEN, APIKEY...
    as the Cloud Pak for Data backend reads them) or declared ones, and of those holding a URL
    with a credential (the URL and its credential part): a kernel given them gets them scrubbed
    too. Short values and words of the notebook format are left out: masking "1" or "markdown"
    everywhere would wreck a notebook, and neither is a credential."""
    env = os.environ if environ is None else environ
    found: dict[str, int] = {}  # value -> the length it needs to be masked
    for k, v in env.items():
        parts = url_credentials(v)
        if is_credential(k, environ=env) or parts:
            found.setdefault(v, min_length)
        for part in parts:  # a URL's password: as short as a given secret may be
            found.setdefault(part, MIN_SECRET_LENGTH)
    return [v for v, least in found.items() if len(v) >= least and not in_notebook_format(v)]


@cache
def _skeleton() -> bytes:
    """A notebook with every kind of cell and output and no content: the format's own text."""
    code: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "",
        "metadata": {"tags": []},
        "outputs": [
            {"name": "stdout", "output_type": "stream", "text": ""},
            {
                "data": {"text/plain": ""},
                "execution_count": 0,
                "metadata": {},
                "output_type": "execute_result",
            },
            {"data": {}, "metadata": {}, "output_type": "display_data"},
            {"ename": "", "evalue": "", "output_type": "error", "traceback": []},
        ],
        "source": "",
    }
    nb = {
        "cells": [
            code,
            *({"cell_type": t, "id": "", "metadata": {}, "source": ""} for t in ("markdown", "raw")),
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False).encode()


def in_notebook_format(value: str) -> bool:
    """Whether `value` (any of its escaped forms) occurs in the text every notebook has ("code",
    "metadata", "python3", indentation...): it could not be scrubbed without corrupting one."""
    return Scrubber([value]).leaks(_skeleton())


def check_secret(name: str, value: Any, origin: str = "") -> None:
    """Refuse, before any kernel starts, a secret that could not be scrubbed safely: not a
    string, shorter than MIN_SECRET_LENGTH, or a word of the notebook format itself."""
    where = f" ({origin})" if origin else ""
    env_name(name)
    if not isinstance(value, str):
        raise MlopsError(f"secret {name!r}{where} must be a string, got {type(value).__name__}")
    if len(value) < MIN_SECRET_LENGTH:
        raise MlopsError(
            f"secret {name!r}{where} is {len(value)} character(s) long: a secret needs at least "
            f"{MIN_SECRET_LENGTH}, or it could not be told apart from the rest of the notebook "
            "when the run is scrubbed"
        )
    if in_notebook_format(value):
        raise MlopsError(
            f"secret {name!r}{where} is a word every notebook contains (its format's own text), "
            "so it could not be scrubbed from the run's notebook: use a real secret value"
        )


def get_secrets() -> dict[str, str]:
    """Inside a template's kernel: every secret this run was given, by name (for ops that hand
    them on, e.g. a deployment's secret custom args)."""
    return {
        key[len(SECRET_ENV_PREFIX) :]: value
        for key, value in os.environ.items()
        if key.startswith(SECRET_ENV_PREFIX)
    }


def secret(name: str) -> str:
    """One secret, as the injected parameters cell reads it; also works in a cloned notebook run
    by hand, from $MLOPS_SECRET_<name>, $<name> or $<NAME>."""
    value = from_environment(name)
    if value is None:
        raise MlopsError(
            f"secret {name!r} is not set: export MLOPS_SECRET_{name} (or {name.upper()}) "
            "in the environment that runs this notebook"
        )
    return value


class Scrubber(Masker):
    """A Masker over structures: every string value of a dict, list or tuple (a NotebookNode
    included) masked. Keys are kept: they are the structure's names (a notebook's
    "execution_count", a mimetype), and masking them corrupts it."""

    def text(self, text: str) -> str:
        """One string value with every form of every secret masked."""
        return self.mask(text)

    def __call__(self, obj: Any) -> Any:
        if not self.forms:
            return obj
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, dict):  # NotebookNode included: its type is kept
            return type(obj)((k, self(v)) for k, v in obj.items())
        if isinstance(obj, list | tuple):
            return type(obj)(self(v) for v in obj)
        return obj


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def merge_streams(outputs: list[Any]) -> list[Any]:
    """Consecutive stream outputs of the same name joined into one, as Jupyter shows them: a
    secret printed a character at a time is then whole again, and the scrub finds it."""
    merged: list[Any] = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and out.get("output_type") == "stream" == prev.get("output_type")
            and out.get("name") == prev.get("name")
        ):
            merged[-1] = type(prev)(
                {**prev, "text": _text(prev.get("text", "")) + _text(out.get("text", ""))}
            )
        else:
            merged.append(out)
    return merged


def _scrub_output(out: Any, scrub: Scrubber) -> Any:
    """An output with its values scrubbed; its structure kept, and base64 images too (a chance
    match in their encoding is no use of a secret: the leak check replaces such an output)."""
    clean = type(out)((k, v if k in _OUTPUT_STRUCTURE else scrub(v)) for k, v in out.items())
    if isinstance(out.get("data"), dict):
        clean["data"] = type(out["data"])(
            (mime, v if mime.startswith("image/") and mime != "image/svg+xml" else scrub(v))
            for mime, v in out["data"].items()
        )
    return clean


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode()


def _without_leaks(metadata: Any, scrub: Scrubber) -> Any:
    """Metadata (already scrubbed) without the entries still holding a secret in a key or a
    number (e.g. papermill's timings): metadata is never worth losing a cell or a run for."""
    return type(metadata)((k, v) for k, v in metadata.items() if not scrub.leaks(_dump({k: v})))


def scrub_notebook(nb: Any, scrub: Scrubber) -> Any:
    """The notebook (an nbformat NotebookNode) scrubbed value by value: streams merged, then every
    string value masked (sources, outputs, metadata) while its structure is kept. An output or a
    cell still holding a secret after that (in a key or a number) is replaced by a note, a
    metadata entry dropped. Raises MlopsError when the secret is in what is left (the format's
    own text): nothing may be written then."""
    import nbformat

    cells = []
    for cell in nb.cells:
        clean = type(cell)((k, v if k in _CELL_STRUCTURE else scrub(v)) for k, v in cell.items())
        clean["metadata"] = _without_leaks(clean.get("metadata", {}), scrub)
        if "id" in clean and scrub.leaks(clean["id"].encode()):  # a chance match: ids mean nothing
            clean["id"] = uuid.uuid4().hex[:8]
        if "outputs" in cell:
            clean["outputs"] = [
                out
                if not scrub.leaks(_dump(out))
                else nbformat.v4.new_output("stream", name="stderr", text=LEAK_NOTE)
                for out in (_scrub_output(o, scrub) for o in merge_streams(cell.outputs))
            ]
        if scrub.leaks(_dump(clean)):
            clean = nbformat.v4.new_markdown_cell(LEAK_NOTE)
        cells.append(clean)
    out = nbformat.v4.new_notebook(
        cells=cells,
        metadata=_without_leaks(scrub(nb.metadata), scrub),
        nbformat=nb.nbformat,
        nbformat_minor=nb.nbformat_minor,
    )
    if scrub.leaks(nbformat.writes(out).encode()):
        raise MlopsError("a secret value is part of the notebook's own structure: it cannot be scrubbed")
    return out
