"""Live state in a real browser: the sidebar follows the workspace's change feed, so a run started
from the CLI (another process than the Jupyter server) appears in it, and its end shows, without
a reload or a click on Refresh (the sidebar's fallback poll is a minute: the deadline here is
below it). The latency is printed, not asserted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from _jlab import TOKEN, browser_page, lab_server, needs_browser, page_error

pytestmark = needs_browser


@pytest.fixture
def lab(tmp_path):
    ws = tmp_path / "ws"
    root = tmp_path / "files"
    root.mkdir()
    with lab_server(tmp_path, root, env={"MLOPS_HOME": str(ws)}) as served:
        yield {**served, "workspace": ws}


def test_a_run_started_from_the_cli_appears_in_the_sidebar_and_ends_there(lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from mlops_widgets.runner import list_runs

    with browser_page(tmp_path / "chrome-profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.extend(filter(None, [page_error(e)])))
        page.goto(f"{lab['url']}/lab?token={TOKEN}")
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
        sidebar = page.locator("#mlops-sidebar")
        if not sidebar.is_visible():
            page.locator(".jp-SideBar .lm-TabBar-tab[title='MLOps']").click()
        expect(sidebar).to_contain_text("no runs match", timeout=30_000)

        began = time.monotonic()
        cli = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlops")),
                "--workspace",
                str(lab["workspace"]),
                "run",
                "C1_OpenScale_Dummy_ML_Provider",
                "-p",
                "service_provider_name",
                "Live Provider",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            item = sidebar.locator(".mlops-run-item")
            expect(item).to_have_count(1, timeout=50_000)  # no reload, no Refresh: the feed
            shown, shown_at = time.monotonic(), time.time()
            run_id = item.get_attribute("data-run")
            out, _ = cli.communicate(timeout=240)
            assert cli.returncode == 0, out
            ended = time.monotonic()
            (run,) = list_runs(lab["workspace"])
            assert run_id == run.run_id and run.status == "ok"
            expect(item.locator(".mlops-badge")).to_have_text("ok", timeout=50_000)
            from mlops_widgets import events_feed
            from mlops_widgets.workspace import Workspace

            recorded = events_feed.since(Workspace(lab["workspace"]), 0)[0].at  # when it was published
            print(
                f"run listed {shown - began:.2f} s after the CLI started "
                f"({shown_at - recorded:.2f} s after the feed announced it); "
                f"its end shown {time.monotonic() - ended:.2f} s after the CLI exited"
            )
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
        assert not errors, errors
