"""generic_metrics: how many ground-truth and predicted images there are, in total and recently.

Counts files (names and mtimes only; nothing is decoded), as the original's provider did.
"""

from __future__ import annotations

from mlops_widgets.monitors.base import ProviderInput
from mlops_widgets.monitors.files import keep_recent, list_files


def compute(inputs: ProviderInput) -> dict[str, float]:
    gt = list_files(inputs.dir_gt)
    pred = list_files(inputs.dir_pred)
    return {
        "num_images_recent_ground_truth": float(len(keep_recent(gt, inputs.most_recent, inputs.now))),
        "num_images_recent_predicted": float(len(keep_recent(pred, inputs.most_recent, inputs.now))),
        "num_images_total_ground_truth": float(len(gt)),
        "num_images_total_predicted": float(len(pred)),
    }
