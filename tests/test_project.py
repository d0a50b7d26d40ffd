"""The package as its ecosystem sees it: one version, written once; a license; a changelog."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import version
from pathlib import Path

import mlops_widgets

REPO = Path(__file__).resolve().parent.parent


def test_the_version_is_written_once_and_everything_else_agrees():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "mlops_widgets/__init__.py"
    assert version("mlops-widgets") == mlops_widgets.__version__  # the installed metadata
    # npm needs a literal version: the extension's sources and its build carry the same one
    for package_json in (
        REPO / "labextension" / "package.json",
        REPO / "mlops_widgets" / "labextension" / "package.json",
    ):
        assert json.loads(package_json.read_text())["version"] == mlops_widgets.__version__, package_json


def test_license_and_changelog():
    assert "Apache License" in (REPO / "LICENSE").read_text()
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == {
        "text": "Apache-2.0"
    }
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{mlops_widgets.__version__}]" in changelog
