"""No script from a name: files, folders, runs, parameters, error messages, providers, monitor
definitions and entries named with HTML and script payloads, walked in a real browser through
every panel tab, the sidebar and a run's tab; no payload may run nor become an element.

One JupyterLab for the module; the workspace is filled before it starts (item 1 of issue 23)."""

from __future__ import annotations

import os
import re

import pytest
from _jlab import TOKEN, browser_page, lab_server, needs_browser, page_error
from helpers import make_folder, make_template, wait_status

pytestmark = needs_browser

PAYLOAD = "<img src=x onerror=window.__xss=1>"
PAYLOADS = (
    PAYLOAD,
    "<svg onload=window.__xss=2>",
    "x' onmouseover='window.__xss=3",
    "```\n<img src=y onerror=window.__xss=4>",
)
# A deployment whose kernel fails at start: its error (shown in the Deploy tab, the Status tab
# and the sidebar) carries the payloads.
FAILING_KERNEL = f"""\
from redhareapi import Kernel

class BrokenKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        raise RuntimeError({" ".join(PAYLOADS[:3])!r})

if __name__ == '__main__':
    BrokenKernel().run()
"""
TABS = ("Prepare", "Deploy", "Monitor", "Status", "Runs", "Train")
# What any payload above would have become: its elements, or an event attribute on any element.
INJECTED = """() => ({
  ran: window.__xss === undefined ? null : String(window.__xss),
  elements: [...document.querySelectorAll('img[src="x"], img[src="y"], svg[onload], [onerror], [onload], [onmouseover]')]
    .map(e => e.outerHTML.slice(0, 120)),
})"""


@pytest.fixture(scope="module")
def xss_lab(tmp_path_factory):
    """A workspace holding runs (parameters and a failure carrying payloads), a provider, a
    monitor definition and an entry named with payloads; a Jupyter root with a folder and a
    file named with them."""
    from mlops_widgets.config import new_entry, validate_entry
    from mlops_widgets.monitors import registry
    from mlops_widgets.ops import connect, space
    from mlops_widgets.runner import run_template
    from mlops_widgets.workspace import Workspace

    base = tmp_path_factory.mktemp("xss-lab")
    ws = Workspace(base / "ws")
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_BACKEND")}
    provider = run_template(
        "C1_OpenScale_Dummy_ML_Provider",
        {"service_provider_name": PAYLOAD},
        workspace=ws.root,
        backend="local",
    )
    assert provider.ok, provider.error
    failing = make_template(
        base / "T_Xss.ipynb",
        'target = "d"  # what it acts on\nnote = ""  # a note',
        ["raise ValueError(note)"],
    )
    failed = run_template(
        failing,
        {"target": PAYLOADS[1], "note": " ".join(PAYLOADS)},
        workspace=ws.root,
        backend="local",
    )
    assert failed.status == "failed"
    registry.register_definition(
        "segmentation_metrics_v9", "segmentation_metrics", name=PAYLOAD, description=PAYLOADS[2], workspace=ws
    )
    entry = new_entry()
    entry["model_name"] = PAYLOAD
    entry["wmla_deployment"]["deployment_name"] = "xss-demo"
    entry, _ = validate_entry(entry)
    space.add_entries(connect("local", ws.root), {"asset-xss": entry})

    from mlops_widgets.backends import get_backend

    inference = get_backend("local", ws).inference
    inference.deploy("xss-dep", make_folder(base / "folders", FAILING_KERNEL))
    inference.start("xss-dep")
    wait_status(inference, "xss-dep", "FAILED")

    root = base / "files"
    (root / PAYLOAD).mkdir(parents=True)
    (root / PAYLOAD / f"{PAYLOADS[1]}.yml").write_text("model_name: x\n")
    # A notebook run as a template from the file browser: its name, a default and a help carry payloads.
    make_template(
        root / f"{PAYLOADS[2]}.ipynb",
        f"note = {PAYLOAD!r}  # {PAYLOADS[1]}\ncount = 1  # how many\n",
        ["print(note)"],
    )
    try:
        with lab_server(base, root, env={**env, "MLOPS_HOME": str(ws.root)}) as lab:
            yield {**lab, "workspace": ws.root, "failed": failed, "provider": provider}
    finally:
        from mlops_widgets.backends.local.inference import stop_service

        stop_service(ws.root)


def assert_inert(page, where: str) -> None:
    found = page.evaluate(INJECTED)
    assert found == {"ran": None, "elements": []}, (where, found)


def test_no_payload_runs_or_becomes_an_element_anywhere(xss_lab, tmp_path):
    from playwright.sync_api import expect

    with browser_page(tmp_path / "chrome-profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.extend(filter(None, [page_error(e)])))
        page.goto(f"{xss_lab['url']}/lab?token={TOKEN}")
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
        page.evaluate("""async () => {
            await window.jupyterapp.restored;
            await window.jupyterapp.commands.execute('filebrowser:activate');
            await window.jupyterapp.commands.execute('mlops:open-panel');
        }""")
        # The file browser lists the payload-named folder and file (JupyterLab's own rendering).
        expect(page.locator("#filebrowser")).to_contain_text(PAYLOAD, timeout=30_000)
        panel = page.locator(".mlops-lab-panel .mlops-panel")
        expect(panel).to_be_visible(timeout=90_000)

        for title in TABS:
            panel.locator(".mlops-tabs .lm-TabBar-tab", has_text=title).click()
            tab = panel.locator(f".mlops-tab-{title.lower()}")
            expect(tab).to_be_visible(timeout=30_000)
            if title == "Prepare":  # browse into the folder named with markup
                field = tab.locator(".mlops-path-model-field")
                field.get_by_role("button", name="Browse…").click()
                field.locator("select").select_option(label=f"{PAYLOAD}/")
                expect(field.locator(".widget-html code").first).to_have_text(PAYLOAD, timeout=30_000)
                expect(field.locator("select")).to_contain_text(f"{PAYLOADS[1]}.yml")
            if title == "Deploy":
                expect(tab).to_contain_text("asset-xss", timeout=30_000)
                expect(tab.locator(".mlops-deployments")).to_contain_text(PAYLOADS[1], timeout=30_000)
            if title == "Monitor":
                expect(tab).to_contain_text(PAYLOAD, timeout=30_000)  # the provider's name
            if title == "Runs":
                row = tab.locator(f".mlops-runs-pick tr[data-id='{xss_lab['failed'].run_id}']")
                expect(row).to_have_count(1, timeout=30_000)
                row.click()
                details = tab.locator(".mlops-run-details")
                expect(details).to_contain_text("ValueError", timeout=30_000)
                expect(details).to_contain_text(PAYLOADS[1])
            assert_inert(page, f"{title} tab")

        sidebar = page.locator("#mlops-sidebar")
        if not sidebar.is_visible():
            page.locator(".jp-SideBar .lm-TabBar-tab[title='MLOps']").click()
        expect(sidebar.locator(".mlops-run-item")).to_have_count(2, timeout=30_000)
        deployment = sidebar.locator(".mlops-deployment[data-deployment='xss-dep']")
        expect(deployment).to_have_attribute("title", re.compile(re.escape(PAYLOADS[1])))
        assert_inert(page, "sidebar")

        for run in (xss_lab["provider"], xss_lab["failed"]):
            sidebar.locator(f".mlops-run-item[data-run='{run.run_id}']").click()
            view = page.locator(".mlops-run-view").last
            expect(view.locator(".mlops-cell-code").first).to_be_visible(timeout=30_000)
            expect(view.locator(".mlops-params").first).to_contain_text(
                PAYLOAD if run is xss_lab["provider"] else PAYLOADS[1]
            )
            assert_inert(page, f"run tab {run.template}")
        expect(view).to_contain_text("ValueError")  # the failed run's tab, shown last
        view.locator(".mlops-run-rerun").click()  # the re-run dialog shows the parameters
        dialog = page.locator(".jp-Dialog")
        expect(dialog.locator(".mlops-params")).to_contain_text(PAYLOADS[1])
        assert_inert(page, "re-run dialog")
        dialog.locator(".jp-mod-reject").click()

        # The file browser's menu on the payload-named notebook, its template dialog and the
        # server's refusal of a payload typed into a number field.
        page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
        item = page.locator("#filebrowser .jp-DirListing-item", has_text=PAYLOADS[2])
        item.click(button="right")
        page.locator(".lm-Menu-item[data-command='mlops:run-notebook']").click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text(PAYLOADS[2], timeout=30_000)
        expect(dialog.locator(".mlops-param-input[data-param='note']")).to_have_value(PAYLOAD)
        expect(dialog.locator(".mlops-param-field", has_text="note")).to_contain_text(PAYLOADS[1])
        assert_inert(page, "template dialog")
        dialog.locator(".mlops-param-input[data-param='count']").fill(PAYLOADS[3])
        dialog.locator(".jp-mod-accept").click()
        expect(page.locator(".jp-Dialog .mlops-params-error")).to_contain_text("count", timeout=60_000)
        assert_inert(page, "template dialog's refusal")
        page.locator(".jp-Dialog .jp-mod-reject").click()
        assert not [e for e in errors if "__xss" in e], errors
