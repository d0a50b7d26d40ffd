"""The application core: one object per workspace and backend, one method per user action.

    app = App(workspace, "local")
    plan = app.deployment_delete_plan("demo")      # what a delete would affect, for a confirmation
    app.deploy_delete("demo", remove_monitor=False) # undeploy; its monitors stay, unscheduled

The CLI, the panel and the server extension call these methods instead of ops and the runner,
so an action validates once, is recorded once in the audit trail (a template run or an event of
the same action name and parameters, whichever front end asked) and keeps the workflow's
invariants in one place:

- no schedule outlives its deployment: deleting a deployment whose monitors stay takes their
  schedules off (the entry keeps its `schedule` settings for a later `monitor create`);
- editing an entry keeps each monitor's schedule unless the edit states one;
- every state change is an event (`deploy.*`, `config.*`, `entry.update`, `monitor.*`,
  `train.stop`).

Front ends render results and errors their own way; methods raise `MlopsError` with complete
messages. Cheap to create: nothing is opened until an action needs it, so a panel thread (whose
backend is its own) builds one per call.
"""

from __future__ import annotations

from typing import Any

from mlops_widgets.app.deployments import DeploymentsMixin
from mlops_widgets.app.doctor import DoctorMixin
from mlops_widgets.app.entries import MONITOR_TEMPLATE, MONITORS_KEY, EntriesMixin, with_kept_schedules
from mlops_widgets.app.jobs import Job
from mlops_widgets.app.monitoring import MonitoringMixin
from mlops_widgets.app.monitoring_reads import DEFAULT_SERVICE_PROVIDER, TREND_POINTS
from mlops_widgets.app.notebooks import ClonePlan, NotebookPlan, clone_plan
from mlops_widgets.app.runs import RunsMixin
from mlops_widgets.app.service import ServiceMixin
from mlops_widgets.app.training import TRAIN_TEMPLATE, TrainingMixin
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.training_protocol import DISTRIBUTED, FRAMEWORKS, JOB_ENDED, JOB_FINISHED
from mlops_widgets.backends.views import DeploymentView, JobView, KernelView, RunView
from mlops_widgets.monitors.definitions import MonitorDefinition
from mlops_widgets.ops.deploy import DeploymentDetail, DeploymentRow
from mlops_widgets.ops.monitor_views import (
    HistoryRow,
    MetricReading,
    MonitorState,
    MonitorStatus,
    SubscriptionRow,
)
from mlops_widgets.ops.schedule import ScheduleRow
from mlops_widgets.ops.space import OnClash
from mlops_widgets.runner.execute import ProgressEvent
from mlops_widgets.runner.secrets import from_environment
from mlops_widgets.runner.templates import Parameter, Template
from mlops_widgets.runner.trail import RunRecord, RunSummary, hint_of

__all__ = [
    "DEFAULT_SERVICE_PROVIDER",
    "DISTRIBUTED",
    "FRAMEWORKS",
    "JOB_ENDED",
    "JOB_FINISHED",
    "MONITORS_KEY",
    "MONITOR_TEMPLATE",
    "TRAIN_TEMPLATE",
    "TREND_POINTS",
    "App",
    "Backend",
    "ClonePlan",
    "DeploymentDetail",
    "DeploymentRow",
    "DeploymentView",
    "HistoryRow",
    "Job",
    "JobView",
    "KernelView",
    "MetricReading",
    "MonitorDefinition",
    "MonitorState",
    "MonitorStatus",
    "NotebookPlan",
    "OnClash",
    "Parameter",
    "ProgressEvent",
    "RunRecord",
    "RunSummary",
    "RunView",
    "ScheduleRow",
    "SubscriptionRow",
    "Template",
    "clone_plan",
    "from_environment",
    "hint_of",
    "with_kept_schedules",
]


class App(
    RunsMixin, EntriesMixin, DeploymentsMixin, MonitoringMixin, TrainingMixin, DoctorMixin, ServiceMixin
):
    """Every user action on one workspace and backend (see the module); each concern's methods
    live in its module (runs, entries, deployments, monitoring, training, doctor, service) over
    `AppBase`."""

    def start(self, action: str, **kwargs: Any) -> Job:
        """Start a long action (a name of `jobs.JOB_ACTIONS`: run, rerun, run_notebook, stage,
        stage_from_job, deploy_create, monitor_create, evaluate, train_submit) in a thread and
        return at once its handle; its progress is published to the change feed as it goes."""
        return Job(self, action, kwargs)
