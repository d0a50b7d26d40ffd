"""The JupyterLab extension in a real browser, on the workspace `mlops demo` leaves: the launcher
tile and the palette command open the panel in a tab with no notebook; the sidebar lists the
demo's deployments and runs and opens a run read-only, without a kernel.

Screenshots go under tmp_path; with MLOPS_SCREENSHOT=1 the README's go to docs/ too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from _jlab import TOKEN, browser_page, lab_server, needs_browser

REPO = Path(__file__).resolve().parent.parent
pytestmark = needs_browser


def shots(tmp_path: Path, name: str) -> list[Path]:
    """Where a screenshot goes: the test's folder, and docs/ when MLOPS_SCREENSHOT asks for it."""
    targets = [tmp_path / name]
    if os.environ.get("MLOPS_SCREENSHOT", "") in ("1", "true", "yes"):
        targets.append(REPO / "docs" / name)
    return targets


def screenshot(locator, tmp_path: Path, name: str) -> None:
    for target in shots(tmp_path, name):
        locator.screenshot(path=str(target))


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory):
    """`mlops demo` on a workspace, then JupyterLab on a folder of user files with that
    workspace as the server's ($MLOPS_HOME, as `mlops lab` sets it)."""
    base = tmp_path_factory.mktemp("demo-lab")
    ws = base / "mlops-demo"
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_BACKEND")}
    subprocess.run([str(Path(sys.executable).with_name("mlops")), "demo", "--workspace", str(ws)],
                   check=True, env=env, capture_output=True, text=True)
    root = base / "files"
    root.mkdir()
    (root / "my_notes.md").write_text("# my notes\n")
    try:
        with lab_server(base, root, env={"MLOPS_HOME": str(ws)}) as lab:
            yield {**lab, "workspace": ws}
    finally:
        from mlops_widgets.backends.local.inference import stop_service

        stop_service(ws)


@pytest.fixture
def page(tmp_path):
    with browser_page(tmp_path / "chrome-profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        assert not errors, errors


def _kernels(lab) -> list[dict]:
    req = urllib.request.Request(f"{lab['url']}/api/kernels", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _open_lab(page, lab) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab['url']}/lab?token={TOKEN}")
    expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=60_000)


def test_launcher_tile_and_palette_command_open_the_panel(demo_lab, page, tmp_path):
    from playwright.sync_api import expect

    _open_lab(page, demo_lab)
    tile = page.locator(".jp-LauncherCard", has_text="MLOps panel")
    expect(tile).to_be_visible()
    screenshot(page, tmp_path, "lab-launcher.png")
    tile.click()
    panel = page.locator(".mlops-lab-panel .mlops-panel")
    expect(panel).to_be_visible(timeout=90_000)  # a kernel of its own runs MLOpsPanel()
    expect(panel).to_contain_text(str(demo_lab["workspace"]))
    expect(panel.locator(".mlops-tabs")).to_contain_text("Prepare")
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="MLOps panel")
    expect(tab).to_have_count(1)

    # Closed, then opened again from the command palette.
    assert len(_kernels(demo_lab)) == 1
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    expect(panel).to_have_count(0)
    page.wait_for_function("""async token => (await (await fetch('/api/kernels',
        {headers: {Authorization: 'token ' + token}})).json()).length === 0""", arg=TOKEN, timeout=30_000)
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    expect(palette).to_be_visible()
    palette.fill("MLOps panel")
    page.locator(".lm-CommandPalette-item", has_text="MLOps panel").first.click()
    expect(panel).to_be_visible(timeout=90_000)


def test_sidebar_lists_the_demo_runs_and_opens_one_read_only(demo_lab, page, tmp_path):
    from playwright.sync_api import expect

    from mlops_widgets.runner import list_runs

    runs = list_runs(demo_lab["workspace"])
    assert len(runs) >= 5
    _open_lab(page, demo_lab)
    sidebar = page.locator("#mlops-sidebar")
    if not sidebar.is_visible():
        page.locator(".jp-SideBar .lm-TabBar-tab[title='MLOps']").click()
    expect(sidebar.locator(".mlops-run-item")).to_have_count(len(runs), timeout=30_000)
    deployment = sidebar.locator(".mlops-deployment[data-deployment='deepliif-demo']")
    expect(deployment).to_contain_text("stopped")  # the demo stops its deployment at the end
    group = sidebar.locator(".mlops-run-group[data-deployment='deepliif-demo']")
    expect(group).to_contain_text("A2_WMLA_Model_Deploy")
    for run in runs:
        expect(sidebar.locator(f".mlops-run-item[data-run='{run.run_id}']")).to_contain_text(run.short_id)
    screenshot(sidebar, tmp_path, "lab-sidebar.png")

    # Filters narrow the list.
    sidebar.locator(".mlops-filter-status").select_option("failed")
    expect(sidebar.locator(".mlops-run-item")).to_have_count(0)
    expect(sidebar).to_contain_text("no runs match")
    sidebar.locator(".mlops-filter-status").select_option("")
    expect(sidebar.locator(".mlops-run-item")).to_have_count(len(runs))

    kernels = len(_kernels(demo_lab))
    a2 = next(r for r in runs if r.template == "A2_WMLA_Model_Deploy")
    sidebar.locator(f".mlops-run-item[data-run='{a2.run_id}']").click()
    view = page.locator(".mlops-run-view")
    expect(view.locator(".mlops-run-title")).to_contain_text("A2_WMLA_Model_Deploy")
    expect(view.locator(".mlops-run-title")).to_contain_text(a2.short_id)
    expect(view.locator(".mlops-cell-code").first).to_be_visible()
    expect(view.locator(".mlops-params")).to_contain_text("deployment_name")
    # Read-only: no editor, no kernel started for it.
    assert view.locator(".jp-Notebook, .cm-editor[contenteditable='true']").count() == 0
    assert len(_kernels(demo_lab)) == kernels
    screenshot(page, tmp_path, "lab-run.png")

    # Re-run asks first, showing the parameters; cancelling runs nothing.
    view.locator(".mlops-run-rerun").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Re-run A2_WMLA_Model_Deploy?")
    expect(dialog.locator(".mlops-params")).to_contain_text("deployment_name")
    dialog.locator(".jp-mod-reject").click()
    expect(dialog).to_have_count(0)
    assert len(list_runs(demo_lab["workspace"])) == len(runs)
