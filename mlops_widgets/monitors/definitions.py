"""Monitor definitions: which metrics a monitor publishes and their default thresholds.

The built-in definitions are the original workflow's two custom monitors. More can be
registered (a versioned id such as `segmentation_metrics_v22` backed by a built-in provider, or
a provider from another package through the `mlops_widgets.monitors` entry point group); see
`mlops_widgets.monitors.registry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["lower", "upper"]
DIRECTIONS: tuple[Direction, ...] = ("lower", "upper")


@dataclass(frozen=True)
class Threshold:
    """A metric limit as the original wrote it: `{threshold: [value, 'lower'|'upper']}`.

    'lower': a value below `value` is a violation; 'upper': a value above it is.
    """

    value: float
    direction: Direction

    def violated_by(self, measured: float) -> bool:
        return measured < self.value if self.direction == "lower" else measured > self.value

    def to_config(self) -> dict[str, list[float | str]]:
        return {"threshold": [self.value, self.direction]}


@dataclass(frozen=True)
class MetricRange:
    """The values a metric can take (`high` may be infinite): a threshold outside them could
    never be crossed, or always is, so the config model refuses it."""

    low: float
    high: float = math.inf

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def text(self) -> str:
        """`0 to 1`, `0 or more`: how the panel and the config's messages say it."""
        low = f"{self.low:g}"
        return f"{low} or more" if math.isinf(self.high) else f"{low} to {self.high:g}"


@dataclass(frozen=True)
class MonitorDefinition:
    """A monitor definition: its id, its metrics in publishing order with default thresholds
    and their ranges (a metric without one is not range-checked), and the provider (a key of
    the provider registry) that computes them."""

    id: str
    name: str
    description: str
    provider: str
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    ranges: dict[str, MetricRange] = field(default_factory=dict)

    @property
    def metric_names(self) -> list[str]:
        return list(self.thresholds)

    def default_thresholds(self) -> dict[str, dict[str, list[float | str]]]:
        """The defaults in the config's shape, as the original's get_default_thresholds returned."""
        return {name: t.to_config() for name, t in self.thresholds.items()}


def _seg_ranges() -> dict[str, MetricRange]:
    # The overall metrics are percentages; the per-class ones fractions (the seed's defaults: 60 and 0.6).
    out: dict[str, MetricRange] = {}
    for metric in ("precision", "recall", "f1", "Dice", "IOU", "PixAcc"):
        out[metric] = MetricRange(0, 100)
        out[f"{metric}_positive"] = out[f"{metric}_negative"] = MetricRange(0, 1)
    return out


def _seg_thresholds() -> dict[str, Threshold]:
    # The seed's THRESHOLDS_SEGMENTATION, in its order.
    base = {"precision": 60.0, "recall": 15.0, "f1": 45.0, "Dice": 20.0, "IOU": 12.0, "PixAcc": 35.0}
    out: dict[str, Threshold] = {}
    for metric, pct in base.items():
        out[metric] = Threshold(pct, "lower")
        out[f"{metric}_positive"] = Threshold(pct / 100, "lower")
        out[f"{metric}_negative"] = Threshold(pct / 100, "lower")
    return out


SEGMENTATION = MonitorDefinition(
    id="segmentation_metrics",
    name="Segmentation Metrics",
    description="Pixel-level agreement of predicted and ground-truth masks (the DeepLIIF definition).",
    provider="segmentation_metrics",
    thresholds=_seg_thresholds(),
    ranges=_seg_ranges(),
)

GENERIC = MonitorDefinition(
    id="generic_metrics",
    name="Generic Metrics",
    description="How many ground-truth and predicted images there are, in total and recently.",
    provider="generic_metrics",
    thresholds={
        "num_images_recent_ground_truth": Threshold(5.0, "lower"),
        "num_images_recent_predicted": Threshold(40.0, "lower"),
        "num_images_total_ground_truth": Threshold(5.0, "lower"),
        "num_images_total_predicted": Threshold(40.0, "lower"),
    },
    ranges={
        name: MetricRange(0)
        for name in (
            "num_images_recent_ground_truth",
            "num_images_recent_predicted",
            "num_images_total_ground_truth",
            "num_images_total_predicted",
        )
    },
)

BUILTIN: dict[str, MonitorDefinition] = {d.id: d for d in (SEGMENTATION, GENERIC)}
