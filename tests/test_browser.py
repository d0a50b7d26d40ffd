"""End to end in a real browser: JupyterLab on 127.0.0.1, headless Debian Chromium driven by
Playwright, a notebook that opens the MLOps panel; Prepare is filled with the bundled example,
Stage runs the template, and the model asset id and the new run show in the panel.

The recipe (and its gotchas) is ../shared/reference/BROWSER-TESTS.md. Screenshots go under
tmp_path (the README's come from test_lab_browser.py).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from _jlab import TOKEN, browser_page, lab_server, needs_browser

NOTEBOOK = "MLOps_Panel.ipynb"
REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "mlops_widgets" / "examples"
# The panel on a workspace inside the server's root (not hidden), so its links open in Lab.
CELL = """\
from mlops_widgets import MLOpsPanel

panel = MLOpsPanel(workspace="workspace")
panel"""

pytestmark = needs_browser


def _write_notebook(path: Path) -> None:
    # Plain nbformat 4.5 JSON: importing nbformat would cost seconds of collection.
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "panel",
                "metadata": {},
                "outputs": [],
                "source": CELL,
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """JupyterLab on a folder with the panel's notebook and the bundled example beside it."""
    base = tmp_path_factory.mktemp("jlab")
    root = base / "root"
    root.mkdir()
    _write_notebook(root / NOTEBOOK)
    # The example beside the notebook, so the form shows short relative paths.
    shutil.copytree(EXAMPLES / "model", root / "example" / "model")
    shutil.copytree(EXAMPLES / "deployment", root / "example" / "deployment")
    shutil.copy(EXAMPLES / "deployment_metadata.yml", root / "example" / "deployment_metadata.yml")
    with lab_server(base, root) as lab:
        yield lab


@pytest.fixture
def page(tmp_path):
    with browser_page(tmp_path / "chrome-profile", 1280, 1700) as page:
        yield page


def test_stage_the_example_from_the_panel_in_jupyterlab(jupyter_lab, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        _drive(page, jupyter_lab, tmp_path)
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"))  # look at this first
        print(f"\nfailure screenshot: {tmp_path / 'failure.png'}\nserver log: {jupyter_lab['log']}")
        raise
    assert not errors, errors


def _drive(page, lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    t0 = time.monotonic()
    page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={TOKEN}")
    # A connected idle kernel (not the "idle" shown before the session has one), or the
    # Select Kernel dialog.
    idle = page.locator("#jp-main-statusbar").get_by_text(re.compile(r"^(?!No Kernel).+ \| Idle$"))
    dialog = page.locator(".jp-Dialog")
    expect(idle.or_(dialog).first).to_be_visible(timeout=60_000)
    if dialog.is_visible():
        dialog.locator(".jp-mod-accept").click()
        expect(idle).to_be_visible(timeout=60_000)
    page.locator(".lm-MenuBar").get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()

    panel = page.locator(".mlops-panel")
    stage = page.locator("button.mlops-stage")
    expect(stage).to_be_visible(timeout=60_000)
    t_panel = time.monotonic() - t0
    expect(stage).to_be_disabled()  # nothing filled in yet: the reason is shown beside it
    expect(page.locator(".mlops-stage-reason")).to_contain_text("choose the model file or folder")

    page.locator(".mlops-yaml-path input").fill("example/deployment_metadata.yml")
    page.locator("button.mlops-load").click()
    expect(page.locator(".mlops-yaml-message")).to_contain_text("loaded example/deployment_metadata.yml")
    expect(page.locator(".mlops-model-name input")).to_have_value("deepliif-demo")
    page.locator(".mlops-path-model input").fill("example/model")
    page.locator(".mlops-path-dependency input").fill("example/deployment")
    expect(stage).to_be_enabled(timeout=15_000)

    # Live validation in the browser: a bad value disables Stage and says why, beside the field.
    cpus = page.locator(".mlops-res-n_cpus input")
    cpus.fill("-2")
    cpus.press("Tab")
    expect(page.locator(".mlops-field-error", has_text="must be a number > 0")).to_be_visible()
    expect(stage).to_be_disabled()
    cpus.fill("1")
    cpus.press("Tab")
    expect(stage).to_be_enabled()

    stage.click()
    expect(page.locator(".mlops-cancel")).to_be_visible()  # the step runs in the background
    asset_id = page.locator(".mlops-model-asset-id")
    expect(asset_id).to_be_visible(timeout=120_000)
    expect(asset_id).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    expect(page.locator(".mlops-task-message")).to_contain_text("Stage: done")
    t_staged = time.monotonic() - t0
    panel.screenshot(path=str(tmp_path / "panel.png"))

    page.locator(".mlops-tabs .lm-TabBar-tab", has_text="Runs").click()
    pick = page.locator(".mlops-runs-pick")
    expect(pick.locator("tr.mlops-grid-row").first).to_contain_text("A_MLOps_Pipeline")
    details = page.locator(".mlops-run-details")
    expect(details).to_contain_text(asset_id.inner_text())
    link = details.locator("a.mlops-open-link[data-run]")
    expect(link).to_have_attribute(
        "href", re.compile(r"/lab/tree/workspace/runs/.+/A_MLOps_Pipeline\.ipynb$")
    )
    panel.screenshot(path=str(tmp_path / "runs.png"))
    print(f"\npanel shown {t_panel:.1f}s, staged {t_staged:.1f}s, screenshots in {tmp_path}")

    # The run's link opens it read-only in a tab of this JupyterLab (the extension catches it).
    link.click()
    view = page.locator(".mlops-run-view")
    expect(view.locator(".mlops-run-title")).to_contain_text("A_MLOps_Pipeline")
    expect(view).to_contain_text("Stage the model", timeout=60_000)
    assert len(page.context.pages) == 1
