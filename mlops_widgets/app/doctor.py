"""The operator's check of Cloud Pak for Data (`mlops doctor`): each service it needs, asked
whether it answers and accepts us, from this environment's settings (no workspace involved)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops_widgets.app._base import AppBase

if TYPE_CHECKING:
    from mlops_widgets.backends.cpd.doctor import Check


class DoctorMixin(AppBase):
    """The Cloud Pak for Data checks of `App`."""

    @staticmethod
    def doctor(record: Path | None = None) -> list[Check]:
        """Each service's check (its version, or in plain words what is wrong); with `record`,
        the workflow's other read-only calls too, every answer written redacted to that file in
        the test corpus format. Imports the IBM-facing client only when asked."""
        from mlops_widgets.backends.cpd.doctor import record_checks, run_checks

        return run_checks() if record is None else record_checks(record)
