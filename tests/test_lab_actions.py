"""JupyterLab's conventions in a real browser (issue 25, item 5): the audit trail's actions on
notebooks in the file browser's context menu and in the notebook toolbar, the status bar item
counting running runs, a run tab following its run to its end, and the extension's settings in
the Settings Editor. The workspace lies inside the folder JupyterLab serves, so the runs'
executed notebooks are in the file browser too.

Screenshots go under tmp_path; with MLOPS_SCREENSHOT=1 the docs' go to docs/ too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from _jlab import TOKEN, lab_server, needs_browser, open_lab
from helpers import make_template

REPO = Path(__file__).resolve().parent.parent
DOCS = {"lab-context-menu.png", "lab-template-dialog.png", "lab-status-bar.png", "lab-settings.png"}
pytestmark = needs_browser

PARAMS = 'count = 1  # how many\nseconds = 0.0  # how long the step takes\ngate = ""  # a file the step waits for\n'
STEP = (
    "import os, time\nfrom mlops_widgets.runner.record import record\n"
    "time.sleep(seconds)\n"
    "while gate and not os.path.exists(gate):\n    time.sleep(0.1)\n"
    "record(total=count * 2)"
)


def screenshot(locator, tmp_path: Path, name: str) -> None:
    locator.screenshot(path=str(tmp_path / name))
    if name in DOCS and os.environ.get("MLOPS_SCREENSHOT", "") in ("1", "true", "yes"):
        locator.screenshot(path=str(REPO / "docs" / name))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("actions-lab")
    root = base / "files"
    ws = root / "mlops"
    make_template(root / "work" / "Mine.ipynb", PARAMS, [STEP])
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_BACKEND")}
    with lab_server(base, root, env={**env, "MLOPS_HOME": str(ws)}) as served:
        yield {**served, "workspace": ws}


def _browse(page, folder: str):
    """The file browser shown on `folder`; returns its listing."""
    from playwright.sync_api import expect

    page.evaluate(
        """async path => {
        await window.jupyterapp.commands.execute('filebrowser:activate');
        await window.jupyterapp.commands.execute('filebrowser:go-to-path', {path});
    }""",
        folder,
    )
    listing = page.locator("#filebrowser .jp-DirListing-content")
    expect(page.locator("#filebrowser .jp-BreadCrumbs")).to_contain_text(folder.split("/")[-1])
    return listing


def _menu_on(page, listing, name: str):
    """The context menu of the file `name` in the listing."""
    from playwright.sync_api import expect

    item = listing.locator(".jp-DirListing-item", has_text=name)
    expect(item).to_have_count(1, timeout=30_000)
    item.click(button="right")
    menu = page.locator(".lm-Menu").last
    expect(menu).to_be_visible()
    return menu


def test_run_a_notebook_as_a_template_from_the_file_browser_then_open_its_run(lab, page, tmp_path):
    from playwright.sync_api import expect

    from mlops_widgets.runner import list_runs

    open_lab(page, lab, reset=True)
    status = page.locator("#jp-main-statusbar .mlops-status-item")
    expect(status).to_have_text("MLOps: idle", timeout=30_000)
    listing = _browse(page, "work")
    menu = _menu_on(page, listing, "Mine.ipynb")
    run_entry = menu.locator(".lm-Menu-item[data-command='mlops:run-notebook']")
    expect(run_entry).to_contain_text("Run as an MLOps template…")
    # Not a run's executed notebook: the other entry is not offered.
    expect(menu.locator(".lm-Menu-item[data-command='mlops:open-notebook-run']")).to_be_hidden()
    screenshot(page, tmp_path, "lab-context-menu.png")
    run_entry.click()

    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Run Mine")
    count = dialog.locator(".mlops-param-input[data-param='count']")
    expect(count).to_have_value("1")
    expect(dialog.locator(".mlops-param-field", has_text="count")).to_contain_text("how many")
    count.fill("lots")
    # Said under the field as the user types, before Run; and gone once the text fits.
    problem = dialog.locator(".mlops-param-field", has_text="count").locator(".mlops-param-problem")
    expect(problem).to_contain_text("must be int", timeout=30_000)
    expect(count).to_have_attribute("aria-invalid", "true")
    screenshot(dialog.locator(".jp-Dialog-content"), tmp_path, "lab-template-dialog.png")
    count.fill("2")
    expect(problem).to_be_empty(timeout=30_000)
    expect(count).not_to_have_attribute("aria-invalid", "true")
    count.fill("lots")
    dialog.locator(".jp-mod-accept").click()
    # The server refused it (through the core): the form again, the error and the text kept.
    error = page.locator(".jp-Dialog .mlops-params-error")
    expect(error).to_contain_text("count", timeout=60_000)
    expect(page.locator(".jp-Dialog .mlops-param-input[data-param='count']")).to_have_value("lots")
    assert list_runs(lab["workspace"]) == []
    page.locator(".jp-Dialog .mlops-param-input[data-param='count']").fill("3")
    gate = tmp_path / "go"  # the run's step waits for it: the test sees it running first
    page.locator(".jp-Dialog .mlops-param-input[data-param='gate']").fill(str(gate))
    page.locator(".jp-Dialog .jp-mod-accept").click()

    # While it runs: the status bar counts it (fed by the change feed) and the job is a notification.
    expect(status).to_have_text("MLOps: 1 running", timeout=60_000)
    expect(page.locator(".jp-toastContainer")).to_contain_text("Running work/Mine.ipynb", timeout=30_000)
    screenshot(page.locator("#jp-main-statusbar"), tmp_path, "lab-status-bar.png")
    gate.touch()
    view = page.locator(".mlops-run-view")
    expect(view).to_have_attribute("data-status", "ok", timeout=120_000)  # opened when it ended
    (run,) = list_runs(lab["workspace"])
    expect(view.locator(".mlops-run-title")).to_contain_text(run.short_id)
    expect(view.locator(".mlops-params").first).to_contain_text("count")
    expect(status).to_have_text("MLOps: idle", timeout=30_000)
    status.click()  # the status bar item opens the sidebar
    expect(page.locator("#mlops-sidebar .mlops-run-item")).to_have_count(1, timeout=30_000)

    # The run's executed notebook, in the file browser: "Open in the audit trail" opens its tab.
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    expect(view).to_have_count(0)
    listing = _browse(page, f"mlops/runs/{Path(run.dir).name}")
    menu = _menu_on(page, listing, "Mine.ipynb")
    menu.locator(".lm-Menu-item[data-command='mlops:open-notebook-run']").click()
    expect(view.locator(".mlops-run-title")).to_contain_text(run.short_id, timeout=30_000)
    # And "Run as an MLOps template…" on it says why it does not run.
    menu = _menu_on(page, listing, "Mine.ipynb")
    menu.locator(".lm-Menu-item[data-command='mlops:run-notebook']").click()
    expect(page.locator(".jp-Dialog")).to_contain_text(f"executed notebook of run {run.short_id}")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    assert len(list_runs(lab["workspace"])) == 1


def test_one_toolbar_button_does_what_each_notebook_offers(lab, page, tmp_path):
    from playwright.sync_api import expect

    from mlops_widgets.app import App
    from mlops_widgets.runner import list_runs

    if not list_runs(lab["workspace"]):
        App(lab["workspace"], "local").run_notebook(lab["root"] / "work" / "Mine.ipynb")
    run = list_runs(lab["workspace"])[0]
    executed = Path(run.notebook).relative_to(lab["root"]).as_posix()
    open_lab(page, lab, reset=True)
    for path, action, label in (
        ("work/Mine.ipynb", "template", "Run as an MLOps template…"),
        (executed, "open", "Open in the audit trail"),
    ):
        page.evaluate("p => window.jupyterapp.commands.execute('docmanager:open', {path: p})", path)
        toolbar = page.locator(".jp-NotebookPanel:visible .jp-NotebookPanel-toolbar")
        button = toolbar.locator(".mlops-notebook-action")
        expect(button).to_have_attribute("data-action", action, timeout=60_000)
        expect(button).to_have_count(1)  # one button, whatever the notebook
        expect(button).to_have_text(label)
    button.click()  # the executed notebook's button opens its run
    expect(page.locator(".mlops-run-view .mlops-run-title")).to_contain_text(run.short_id, timeout=30_000)


def test_an_open_run_tab_follows_its_run_to_the_end(lab, page, tmp_path):
    """A run started elsewhere (the CLI) and opened while it runs: its tab says it runs, then
    shows its end state and executed notebook without a reload."""
    from playwright.sync_api import expect

    from mlops_widgets.runner import list_runs

    before = {r.run_id for r in list_runs(lab["workspace"])}
    gate = tmp_path / "go"  # the run's step waits for it: the test sees the run running first
    open_lab(page, lab, reset=True)
    cli = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlops")),
            "--workspace",
            str(lab["workspace"]),
            "run",
            str(lab["root"] / "work" / "Mine.ipynb"),
            "-p",
            "gate",
            str(gate),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = page.locator("#jp-main-statusbar .mlops-status-item")
        expect(status).to_have_text("MLOps: 1 running", timeout=60_000)
        (new,) = [r for r in list_runs(lab["workspace"]) if r.run_id not in before]
        page.evaluate("id => window.jupyterapp.commands.execute('mlops:open-run', {runId: id})", new.run_id)
        view = page.locator(".mlops-run-view")
        expect(view).to_have_attribute("data-status", "running", timeout=30_000)
        expect(view).to_contain_text("Running: its executed notebook shows here when it ends")
        gate.touch()
        out, _ = cli.communicate(timeout=240)
        assert cli.returncode == 0, out
        expect(view).to_have_attribute("data-status", "ok", timeout=60_000)
        expect(view.locator(".mlops-run-title .mlops-badge")).to_have_text("ok")
        expect(view.locator(".mlops-cell-code").first).to_be_visible()
        expect(status).to_have_text("MLOps: idle")
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def _put_settings(lab, raw: dict) -> None:
    req = urllib.request.Request(
        f"{lab['url']}/lab/api/settings/mlops-widgets:plugin",
        data=json.dumps({"raw": json.dumps(raw)}).encode(),
        method="PUT",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status in (200, 204)


def test_the_settings_editor_shows_the_browsers_settings_and_the_sidebar_follows_them(lab, page, tmp_path):
    from playwright.sync_api import expect

    from mlops_widgets.app import App
    from mlops_widgets.runner import list_runs

    while len(list_runs(lab["workspace"])) < 2:
        App(lab["workspace"], "local").run_notebook(lab["root"] / "work" / "Mine.ipynb")
    runs = len(list_runs(lab["workspace"]))
    _put_settings(lab, {"sidebarPageSize": 1})
    try:
        open_lab(page, lab, reset=True)
        page.evaluate("() => window.jupyterapp.commands.execute('settingeditor:open', {query: 'MLOps'})")
        editor = page.locator(".jp-SettingsPanel, .jp-SettingsEditor").first
        expect(editor).to_contain_text("Runs per page in the sidebar", timeout=30_000)
        expect(editor).to_contain_text("mlops settings")  # where the server's settings are
        screenshot(page, tmp_path, "lab-settings.png")
        sidebar = page.locator("#mlops-sidebar")
        if not sidebar.is_visible():
            page.locator(".jp-SideBar .lm-TabBar-tab[title='MLOps']").click()
        expect(sidebar.locator(".mlops-run-item")).to_have_count(1, timeout=30_000)
        more = sidebar.locator(".mlops-sidebar-more")
        expect(more).to_have_text(f"Show 1 more ({runs} in all)")
        more.click()
        expect(sidebar.locator(".mlops-run-item")).to_have_count(2)
    finally:
        _put_settings(lab, {})
