"""What a metric provider is: a monitor definition plus a function from two image folders to
metric values. Built-ins and providers from other packages (entry point group
`mlops_widgets.monitors`) share this shape.

A provider from another package::

    # my_pkg/monitors.py
    from mlops_widgets.monitors import MetricProvider, MonitorDefinition, ProviderInput, Threshold

    def compute(inputs: ProviderInput) -> dict[str, float]:
        ...  # read inputs.dir_gt / inputs.dir_pred; raise ProviderError(msg) to fail the run

    PROVIDER = MetricProvider(
        MonitorDefinition(id="my_metrics", name="My metrics", description="...",
                          provider="my_metrics", thresholds={"score": Threshold(0.5, "lower")}),
        compute,
    )

    # pyproject.toml
    [project.entry-points."mlops_widgets.monitors"]
    my_metrics = "my_pkg.monitors:PROVIDER"
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors.definitions import MonitorDefinition


class ProviderError(MlopsError):
    """A provider could not compute its metrics (too few images, a missing folder...).

    The message becomes the run's error message, so it says what was found and where.
    """


@dataclass(frozen=True)
class ProviderInput:
    """What a monitor instance hands its provider: the two folders (already resolved on the
    storage volume), the recency window in days (None: every file) and the clock."""

    dir_gt: Path
    dir_pred: Path
    most_recent: float | None = None
    now: float = field(default_factory=time.time)
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricProvider:
    """A definition (its metrics and default thresholds) and the function that computes them.

    `compute` returns metric name -> value for every metric of the definition.
    """

    definition: MonitorDefinition
    compute: Callable[[ProviderInput], Mapping[str, float]]

    @property
    def name(self) -> str:
        return self.definition.provider

    def evaluate(self, inputs: ProviderInput) -> dict[str, float]:
        """Run `compute` and check it published exactly the definition's metrics, as floats."""
        values = self.compute(inputs)
        expected = self.definition.metric_names
        missing = [m for m in expected if m not in values]
        extra = [m for m in values if m not in self.definition.thresholds]
        if missing or extra:
            raise ProviderError(
                f"provider {self.name!r} returned metrics that do not match its definition "
                f"{self.definition.id!r}: missing {missing}, unexpected {extra}"
            )
        return {m: float(values[m]) for m in expected}
