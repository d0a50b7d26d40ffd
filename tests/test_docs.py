"""The documentation site builds with warnings as errors (a broken link or reference, a page in
no table of contents, a bad directive all fail), and its hand-written REST API page names every
route the server extension serves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_widgets.server.handlers import routes

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_docs_build_without_a_warning(tmp_path: Path):
    pytest.importorskip("sphinx", reason="the docs tools come with `pip install -e '.[docs]'`")
    out = tmp_path / "html"
    res = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html", DOCS, out],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, f"sphinx-build -W failed (build it with `bash dev.sh docs`):\n{res.stderr}"
    cli = re.sub(r"<[^>]+>", "", (out / "reference" / "cli.html").read_text())
    for command in ("mlops deploy create", "mlops monitor status", "mlops runs list", "mlops train submit"):
        assert f"{command} [OPTIONS]" in cli, command
    assert "kernel_delay_release_time" in (out / "reference" / "config.html").read_text()
    pages = {p.relative_to(DOCS).with_suffix(".html") for p in DOCS.rglob("*.md") if "_build" not in p.parts}
    assert all((out / p).is_file() for p in pages)


def test_the_rest_api_page_names_every_route():
    page = (DOCS / "reference" / "rest-api.md").read_text()
    for pattern, handler in routes("/"):
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: m.group(1).upper(), pattern).lstrip("/")
        methods = [m.upper() for m in ("get", "post", "put", "patch", "delete") if m in vars(handler)]
        for method in methods:
            assert f"`{method} {path}`" in page, f"{method} {path} is not in docs/reference/rest-api.md"
