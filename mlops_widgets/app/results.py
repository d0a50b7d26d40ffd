"""What the application core's actions return, typed (the front ends render them their own way)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_widgets.runner.trail import RunRecord


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a deployment touches: whether it is deployed, its entry, its monitors and
    which of them are scheduled (each "monitor every 1h, enabled")."""

    deployment_name: str
    deployed: bool
    model_asset_id: str | None
    monitors: list[str]
    schedules: list[str]

    def effects(self, *, remove_monitor: bool, remove_config: bool) -> list[str]:
        """What goes, what stays, which schedules stop (the confirmation's lines): the deletion
        first, then one line each."""
        parts = [f"Delete deployment {self.deployment_name}" + ("" if self.deployed else " (not deployed)")]
        if self.monitors:
            mons = ", ".join(self.monitors)
            parts.append(f"its monitors ({mons}) {'are deleted' if remove_monitor else 'stay'}")
            if self.schedules and not remove_monitor:
                parts.append(f"their schedules stop ({'; '.join(self.schedules)})")
        if self.model_asset_id:
            parts.append(
                f"its entry {self.model_asset_id} is {'removed' if remove_config else 'kept, cleared'}"
            )
        return parts


@dataclass(frozen=True)
class DeploymentDeleted:
    deployment_name: str
    undeployed: bool
    model_asset_id: str | None
    entry: str | None  # "removed", "cleared" or None (no entry named it)
    deleted_subscription_ids: list[str]
    unscheduled: list[str] = field(default_factory=list)  # monitors whose schedule was taken off


@dataclass(frozen=True)
class EntryEdited:
    model_asset_id: str
    deployment_name: str | None
    monitors_recreated: bool
    run: RunRecord | None  # the monitor configuration's template run, when one ran
