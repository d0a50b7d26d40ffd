"""Training jobs."""

from __future__ import annotations

from mlops_widgets.app._base import AppBase
from mlops_widgets.backends.views import JobView


class TrainingMixin(AppBase):
    """Training actions of `App`."""

    def train_stop(self, job_id: str) -> JobView:
        """Stop a training job (every process of every worker); returns the job."""
        from mlops_widgets.ops import train

        with self._event("train.stop", {"job_id": job_id}) as event:
            job = train.stop(self.backend, job_id)
            event.result = {"state": job.state}
        return job
