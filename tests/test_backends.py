"""Backends plug in through the `mlops_widgets.backends` entry point group, as monitors do."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_widgets.backends import ENTRY_POINT_GROUP, OWN, backend_name, get_backend, installed
from mlops_widgets.errors import MlopsError

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = """
from mlops_widgets.backends import local
from mlops_widgets.backends.base import Backend


def create(workspace):
    services = local.create(workspace)._factories
    return Backend("mirror", workspace, services)
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package installed only through sys.path: a module and a dist-info with entry points."""
    site = tmp_path / "site"
    info = site / "mlw_backend_demo-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "mlw_backend_demo.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlw-backend-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nmirror = mlw_backend_demo:create\nbroken = mlw_backend_missing:create\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("mlw_backend_demo", None)


def test_pyproject_declares_the_packages_own_backends():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        ENTRY_POINT_GROUP
    ]
    assert declared == OWN


def test_unknown_backend_names_the_installed_ones(cli):
    with pytest.raises(MlopsError, match=r"unknown backend 'nope': the installed backends are cpd, local"):
        backend_name("nope")
    res = cli("--backend", "nope", "config", "list")
    assert res.exit_code == 1 and "the installed backends are cpd, local" in res.stderr


def test_a_backend_from_another_package_is_found_by_its_entry_point(plugin_site, workspace, cli):
    assert installed()["mirror"] == "mlw_backend_demo:create"
    backend = get_backend("mirror", workspace)
    assert backend.name == "mirror" and backend.workspace.root == workspace.root
    res = cli("--backend", "mirror", "config", "list")
    assert res.exit_code == 0 and "no entries" in res.stdout


def test_a_backend_that_fails_to_load_says_why(plugin_site, workspace):
    with pytest.raises(
        MlopsError,
        match=r"backends plug-in 'broken' \(mlw_backend_missing:create\) failed to load: ModuleNotFoundError",
    ):
        get_backend("broken", workspace)
