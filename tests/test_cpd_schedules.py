"""Schedules and alerts on the cpd backend: the schedule is set on OpenScale's monitor instance
(the fake stores and returns it, as OpenScale would before running it), and `monitor alerts`
reads OpenScale's measurements."""

from __future__ import annotations

import json

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from helpers import add_entry

from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors import BUILTIN
from mlops_widgets.monitors.schedule import MIN_ENV
from mlops_widgets.ops import alerts, monitor, schedule, space

GEN = "generic_metrics"


@pytest.fixture
def attached(cpd_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A deployment `demo` whose entry schedules generic_metrics every hour, attached on OpenScale."""
    monkeypatch.setenv(MIN_ENV, "1")
    cpd_backend.monitoring.monitor_definitions.add(BUILTIN[GEN])
    monitor.provider_create(cpd_backend)
    common = {"dir_gt": "gt", "dir_pred": "pred", "volume_display_name": "vol", "most_recent": 7}
    add_entry(
        cpd_backend,
        monitors={
            GEN: {**common, "thresholds": BUILTIN[GEN].default_thresholds(), "schedule": {"every": "1h"}}
        },
    )
    monitor.monitor_create(cpd_backend, "demo")
    return cpd_backend


def _stored(fake: FakeCpd) -> dict:
    (inst,) = [
        i
        for i in fake.openscale.store["monitor_instances"].values()
        if i["entity"]["monitor_definition_id"] == GEN
    ]
    return inst["entity"].get("schedule")


def test_the_schedule_is_set_on_openscales_monitor_instance(
    attached: Backend, fake_cpd: FakeCpd, cli
) -> None:
    stored = _stored(fake_cpd)
    assert (stored["repeat_interval"], stored["repeat_unit"], stored["status"]) == (1, "hour", "enabled")
    assert stored["start_time"]["type"] == "absolute"

    res = cli("--backend", "cpd", "monitor", "schedule", "--name", "demo", "--every", "120s", "--pause")
    assert res.exit_code == 0, res.output
    assert (_stored(fake_cpd)["repeat_interval"], _stored(fake_cpd)["repeat_unit"]) == (2, "minute")
    assert _stored(fake_cpd)["status"] == "disabled"
    listed = json.loads(cli("--backend", "cpd", "monitor", "schedule", "--list", "--json").stdout)
    assert [(r["monitor_id"], r["every"], r["status"]) for r in listed] == [(GEN, "2m", "paused")]
    schedule.set_schedule(attached, "demo", paused=False)
    assert _stored(fake_cpd)["status"] == "enabled"
    entry = space.get_entry(attached, deployment_name="demo")[1]
    assert entry["openscale_custom_metric_provider"][GEN]["schedule"] == {"every": "120s", "paused": False}

    with pytest.raises(MlopsError, match="whole minutes, got 90 s") as err:
        schedule.set_schedule(attached, "demo", every="90s")
    assert err.value.hint.action == "monitor.schedule.minutes"
    assert _stored(fake_cpd)["repeat_interval"] == 2  # refused: nothing changed

    schedule.set_schedule(attached, "demo", remove=True)
    assert _stored(fake_cpd) is None
    assert (
        "schedule"
        not in space.get_entry(attached, deployment_name="demo")[1]["openscale_custom_metric_provider"][GEN]
    )


def test_alerts_are_read_from_openscales_measurements(attached: Backend, cli) -> None:
    mon = attached.monitoring
    (inst,) = mon.monitor_instances.list(monitor_definition_id=GEN)
    iid = inst["metadata"]["id"]
    for run_id, n in (("r1", 4), ("r2", 5), ("r3", 60), ("r4", 3)):  # limit 40 lower
        mon.measurements.add(iid, run_id=run_id, metrics={"num_images_recent_predicted": n})
    res = cli("--backend", "cpd", "monitor", "alerts", "--name", "demo", "--json")
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)
    assert [a["run_id"] for a in found] == ["r4", "r2", "r1"]  # r3 was within its limit
    assert [a["opens_episode"] for a in found] == [True, False, True]
    assert found[0]["violations"][0]["metric"] == "num_images_recent_predicted"
    assert alerts.sync(attached) == []  # read once: nothing new the second time
    assert alerts.unacknowledged_count(attached.workspace) == 3
