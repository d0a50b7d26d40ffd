"""The panel's tables and dialogs in a real JupyterLab, on a workspace `mlops demo` leaves (a
deployment with two scheduled monitors) and a few more runs: the Runs table sorts by a header
and pages; a picked run re-runs only after the dialog's OK; Delete names the monitors and
schedules it affects; Remove monitor asks first; axe-core finds no violation on the tables and
the dialog in either theme.

The tests run in this order on one workspace: the deletion comes last.
"""

from __future__ import annotations

import re

import pytest
from _jlab import (
    axe_violations,
    demo_workspace,
    lab_server,
    needs_browser,
    open_lab,
    show_panel,
)

pytestmark = needs_browser

DEPLOYMENT = "deepliif-demo"
C1 = "C1_OpenScale_Dummy_ML_Provider"
EXTRA_RUNS = 6  # beside the demo's runs and events: more than a page of 10
# Where a name falls among names in the browser's natural order (numbers as numbers).
NATURAL_RANK = """([name, names]) => {
  const c = new Intl.Collator(undefined, {numeric: true, sensitivity: 'base'});
  return names.filter(n => c.compare(n, name) < 0).length;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from mlops_widgets.runner import list_runs, run_template

    base = tmp_path_factory.mktemp("tables-lab")
    ws = demo_workspace(base)
    demo_runs = len(list_runs(ws))  # its template runs and its events
    for _ in range(EXTRA_RUNS):
        assert run_template(C1, {}, workspace=ws).ok
    root = base / "files"
    root.mkdir()
    try:
        with lab_server(base, root, env={"MLOPS_HOME": str(ws)}) as server:
            yield {**server, "workspace": ws, "demo_runs": demo_runs}
    finally:
        from mlops_widgets.backends.local.inference import stop_service

        stop_service(ws)


def _panel_tab(page, lab, title: str, theme: str = "light"):
    """The panel opened in `theme`, showing tab `title`."""
    from playwright.sync_api import expect

    open_lab(page, lab)
    panel = show_panel(page, theme=theme)
    panel.locator(".mlops-tabs .lm-TabBar-tab", has_text=title).click()
    tab = panel.locator(f".mlops-tab-{title.lower()}")
    expect(tab).to_be_visible(timeout=30_000)
    return tab


def _column(table, key: str) -> list[str]:
    return table.locator(f"tbody tr.mlops-grid-row td[data-key='{key}']").all_inner_texts()


def test_the_runs_table_sorts_pages_and_reruns_only_after_ok(lab, page):
    from playwright.sync_api import expect

    from mlops_widgets.runner import list_runs

    runs = list_runs(lab["workspace"])
    assert len(runs) == lab["demo_runs"] + EXTRA_RUNS
    tab = _panel_tab(page, lab, "Runs")
    table = tab.locator(".mlops-runs-pick")
    rows = table.locator("tbody tr.mlops-grid-row")
    expect(rows).to_have_count(10, timeout=30_000)  # one page
    # Newest first, times as the panel writes them; the newest run is picked.
    started = table.locator("th[data-key='time']")
    expect(started).to_have_attribute("aria-sort", "descending")
    times = _column(table, "time")
    assert times == sorted(times, reverse=True) and all(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times
    )
    expect(rows.first).to_have_attribute("aria-selected", "true")
    expect(rows.first.locator(".mlops-badge-ok")).to_have_text("ok")

    # Sort by Template: ascending, then descending on a second click (the header says which).
    template = table.locator("th[data-key='template']")
    template.locator("button").click()
    expect(template).to_have_attribute("aria-sort", "ascending")
    expect(started).not_to_have_attribute("aria-sort", re.compile("."))
    # In the browser's natural order (as JupyterLab's file browser sorts names).
    order = sorted(
        {r.template for r in runs}, key=lambda n: page.evaluate(NATURAL_RANK, [n, [r.template for r in runs]])
    )
    names = _column(table, "template")
    assert names == [n for n in order for r in runs if r.template == n][:10], names
    template.locator("button").press("Enter")  # the keyboard sorts too
    expect(template).to_have_attribute("aria-sort", "descending")
    expect(rows.first.locator("td[data-key='template']")).to_have_text(order[-1])

    # Page through: more runs than a page of 10.
    n = len(runs)
    pager = table.locator(".mlops-pager")
    expect(pager.locator(".mlops-pager-range")).to_have_text(f"1–10 of {n}, page 1 of 2")
    expect(pager.locator(".mlops-pager-prev")).to_be_disabled()
    pager.locator(".mlops-pager-next").click()
    expect(pager.locator(".mlops-pager-range")).to_have_text(f"11–{n} of {n}, page 2 of 2")
    expect(rows).to_have_count(n - 10)
    expect(rows.last.locator("td[data-key='template']")).to_have_text(order[0])  # the smallest, last
    pager.locator(".mlops-pager-prev").click()
    expect(rows).to_have_count(10)

    # Pick the demo's C1 run with the keyboard: its record shows below.
    c1 = next(r for r in runs if r.template == C1)
    row = table.locator(f"tr[data-id='{c1.run_id}']")
    rows.first.focus()
    for _ in range(20):
        if page.evaluate("id => document.activeElement.dataset.id === id", c1.run_id):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("aria-selected", "true")
    details = tab.locator(".mlops-run-details")
    expect(details).to_contain_text(c1.short_id, timeout=30_000)

    # Re-run: asked in JupyterLab's dialog; Cancel runs nothing, OK runs it once.
    rerun = tab.locator("button.mlops-rerun")
    rerun.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(f"Re-run {C1}?")
    expect(dialog).to_contain_text(f"the parameters of run {c1.short_id}")
    dialog.locator(".jp-mod-reject").click()
    expect(dialog).to_have_count(0)
    rerun.click()
    expect(dialog.locator(".jp-mod-accept")).to_have_text("Re-run")
    dialog.locator(".jp-mod-accept").click()
    expect(tab.locator(".mlops-runs-message")).to_contain_text(f"re-ran {c1.short_id} as", timeout=120_000)
    after = list_runs(lab["workspace"])
    assert len(after) == len(runs) + 1 and after[0].rerun_of == c1.run_id  # the Cancel ran nothing
    new = table.locator(f"tr[data-id='{after[0].run_id}']")  # picked, on its page
    expect(new).to_have_attribute("aria-selected", "true")
    expect(new.locator("td[data-key='trigger']")).to_have_text("re-run")


def test_remove_monitor_asks_in_a_dialog(lab, page):
    from playwright.sync_api import expect

    tab = _panel_tab(page, lab, "Prepare")
    tab.locator("button.mlops-load-example").click()
    remove = tab.locator("button.mlops-remove-monitor")
    expect(remove).to_have_count(2, timeout=30_000)
    generic = tab.locator(".mlops-monitor-generic_metrics")
    generic.locator("xpath=..").locator(".mlops-monitor-header").click()  # unfold it
    remove = generic.locator("button.mlops-remove-monitor")
    remove.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Remove monitor generic_metrics?")
    dialog.locator(".jp-mod-reject").click()
    expect(dialog).to_have_count(0)
    expect(remove).to_be_visible()
    remove.click()
    expect(dialog.locator(".jp-mod-accept")).to_have_text("Remove")
    dialog.locator(".jp-mod-accept").click()
    expect(generic).to_have_count(0)
    expect(tab.locator(".mlops-monitor-header")).to_have_count(1)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_tables_and_the_dialog_pass_axe_in_both_themes(lab, page, theme, tmp_path):
    from playwright.sync_api import expect

    tab = _panel_tab(page, lab, "Deploy", theme)
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", str(theme == "light").lower())
    deployments = tab.locator(".mlops-deployments")
    expect(deployments.locator(f"tr[data-id='{DEPLOYMENT}']")).to_be_visible(timeout=30_000)
    found = {"deployments": axe_violations(page, deployments)}
    tab.locator("button.mlops-delete").click()
    found["dialog"] = axe_violations(page, page.locator(".jp-Dialog"))
    page.screenshot(path=str(tmp_path / f"delete-dialog-{theme}.png"))
    page.locator(".jp-Dialog .jp-mod-reject").click()
    page.locator(".mlops-tabs .lm-TabBar-tab", has_text="Runs").click()
    runs = page.locator(".mlops-tab-runs .mlops-runs-pick")
    expect(runs.locator("tr.mlops-grid-row").first).to_be_visible(timeout=30_000)
    found["runs"] = axe_violations(page, runs)
    runs.screenshot(path=str(tmp_path / f"runs-table-{theme}.png"))
    assert not any(found.values()), found


def test_delete_names_the_monitors_and_schedules_in_its_dialog(lab, page):
    from playwright.sync_api import expect

    from mlops_widgets.ops import deploy as ops_deploy

    tab = _panel_tab(page, lab, "Deploy")
    table = tab.locator(".mlops-deployments")
    row = table.locator(f"tr[data-id='{DEPLOYMENT}']")
    expect(row).to_have_attribute("aria-selected", "true", timeout=30_000)  # the only one, picked
    expect(row.locator("td[data-key='state'] .mlops-badge-warn")).to_have_text("stopped")  # the demo stops it
    delete = tab.locator("button.mlops-delete")
    delete.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(f"Delete deployment {DEPLOYMENT}?")
    items = dialog.locator(".mlops-dialog-body li")
    expect(items.nth(0)).to_have_text("Its monitors (generic_metrics, segmentation_metrics) stay")
    expect(items.nth(1)).to_contain_text("Their schedules stop (generic_metrics every ")
    expect(items.nth(1)).to_contain_text("segmentation_metrics every ")
    expect(items.nth(2)).to_contain_text("Its entry ")
    dialog.locator(".jp-mod-reject").click()  # Cancel: still there
    expect(dialog).to_have_count(0)
    delete.click()
    expect(dialog.locator(".jp-mod-accept")).to_have_text("Delete")
    dialog.locator(".jp-mod-accept").click()
    expect(tab.locator(".mlops-deploy-message")).to_contain_text(f"{DEPLOYMENT} deleted", timeout=120_000)
    expect(table).to_contain_text("no deployments yet")
    from mlops_widgets.backends import get_backend
    from mlops_widgets.workspace import Workspace

    assert ops_deploy.deploy_list(get_backend("local", Workspace(lab["workspace"]))) == []
