"""The open MLOps panel in a real browser follows what the CLI changes, with no Refresh clicked
(issue 25's stale states): the alert count beside its title is the sidebar's and goes when the
alerts are acknowledged from the CLI; "Edit a staged entry" offers an entry the CLI added; a
training job submitted from the CLI shows, then shows ended with Stop disabled. The panel's
kernel reads the workspace's change feed; the latencies are printed, not asserted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _jlab import TOKEN, browser_page, lab_server, needs_browser, page_error, show_panel
from helpers import submit_args

from mlops_widgets.config import dump_yaml, load_config

pytestmark = needs_browser
MLOPS = str(Path(sys.executable).with_name("mlops"))
EXAMPLE = Path(__file__).resolve().parent.parent / "mlops_widgets" / "examples" / "deployment_metadata.yml"


@pytest.fixture
def demo_lab(tmp_path):
    """`mlops demo`'s workspace (a deployment with alerts), served by JupyterLab as `mlops lab` does."""
    ws = tmp_path / "mlops-demo"
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_BACKEND")}
    subprocess.run([MLOPS, "demo", "--workspace", str(ws)], check=True, env=env, capture_output=True)
    root = tmp_path / "files"
    root.mkdir()
    try:
        with lab_server(tmp_path, root, env={"MLOPS_HOME": str(ws)}) as lab:
            yield {**lab, "workspace": ws}
    finally:
        from mlops_widgets.backends.local.inference import stop_service

        stop_service(ws)


def mlops(lab: dict, *args: str) -> str:
    """The CLI on the lab's workspace: another process than the panel's kernel."""
    out = subprocess.run(
        [MLOPS, "--workspace", str(lab["workspace"]), *args], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_open_panel_follows_the_cli_without_refresh(demo_lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from mlops_widgets.ops.alerts import unacknowledged_count
    from mlops_widgets.workspace import Workspace

    alerts = unacknowledged_count(Workspace(demo_lab["workspace"]))
    assert alerts, "the demo's thresholds make a metric fail on purpose: it leaves alerts"
    said = f"{alerts} alert{'s' if alerts != 1 else ''}"
    (entry,) = load_config(EXAMPLE, with_key=False).entries.values()
    keyed = tmp_path / "entries.yml"
    keyed.write_text(dump_yaml({"asset-from-cli": entry}))
    script = tmp_path / "gated.py"  # trains until the test lets it end
    gate = tmp_path / "gate"
    script.write_text(
        f"import os, time\nprint('training')\nwhile not os.path.exists({str(gate)!r}):\n    time.sleep(0.1)\n"
    )

    with browser_page(tmp_path / "chrome-profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.extend(filter(None, [page_error(e)])))
        page.goto(f"{demo_lab['url']}/lab?token={TOKEN}")
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
        sidebar = page.locator("#mlops-sidebar")
        if not sidebar.is_visible():
            page.locator(".jp-SideBar .lm-TabBar-tab[title='MLOps']").click()
        panel = show_panel(page)

        # The alert count beside the panel's title is the sidebar's, and both follow the CLI.
        badge = panel.locator(".mlops-panel-alerts")
        expect(badge).to_have_text(said, timeout=30_000)
        expect(sidebar.locator(".mlops-badge-alert")).to_have_text(said, timeout=30_000)
        began = time.monotonic()
        mlops(demo_lab, "monitor", "alerts", "--ack-all")
        expect(badge).to_have_text("", timeout=30_000)
        acked = time.monotonic() - began
        expect(sidebar.locator(".mlops-badge-alert")).to_have_count(0, timeout=30_000)

        # "Edit a staged entry" offers the entry the CLI just added.
        pick = panel.locator(".mlops-entry-pick select")
        began = time.monotonic()
        mlops(demo_lab, "config", "add", "--path-yml", str(keyed))
        expect(pick.locator("option", has_text="asset-from-cli")).to_have_count(1, timeout=30_000)
        added = time.monotonic() - began

        # A training job submitted from the CLI shows, in the Train tab and the status bar, then
        # ends: ended, with Stop disabled.
        panel.locator(".mlops-tabs .lm-TabBar-tab", has_text="Train").click()
        out = mlops(
            demo_lab,
            *submit_args(script),
        )
        job_id = next(w for w in out.split() if w.startswith("train-")).rstrip(":")
        jobs = panel.locator(".mlops-train-jobs select")
        job = jobs.locator("option", has_text=job_id)
        expect(job).to_have_count(1, timeout=30_000)
        jobs.select_option(label=job.inner_text())
        status = page.locator("#jp-main-statusbar .mlops-status-item")
        expect(status).to_have_text("MLOps: 1 training", timeout=30_000)
        gate.touch()
        began = time.monotonic()
        expect(job).to_contain_text("finished", timeout=60_000)
        expect(status).to_have_text("MLOps: idle", timeout=30_000)
        ended = time.monotonic() - began
        expect(panel.locator("button.mlops-train-stop")).to_be_disabled()
        expect(panel.locator(".mlops-train-stop-reason")).to_contain_text("pick a running job")
        assert panel.get_by_role("button", name="Refresh").count() >= 1  # there, never clicked
        page.screenshot(path=str(tmp_path / "panel-live.png"))
        print(
            f"\nalerts acknowledged -> badge gone {acked:.2f} s after the CLI started; "
            f"entry added -> listed {added:.2f} s; job shown ended {ended:.2f} s after its script was let end"
        )
        assert not errors, errors
