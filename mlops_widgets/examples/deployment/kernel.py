"""Example WMLA EDI kernel: segment stained nuclei of an IHC tile by colour.

Request (JSON):  {"image": "<base64 PNG or JPEG, RGB>", "name": "tile_001"}   (name optional)
Response (JSON): {"name": ..., "mask": "<base64 PNG>", "positive_pixels": n, "negative_pixels": n}
The mask follows DeepLIIF's convention: red channel marks positive (brown, DAB-stained) cells,
blue channel negative (blue, hematoxylin-stained) cells.

The colour rule comes from the model asset (`weights.json` of the staged model folder, unpacked
under REDHARE_MODEL_PATH; mk_environments name it in MODEL_ASSET). Written for WMLA EDI and
run unmodified by mlops-widgets' local inference service. Needs numpy and Pillow only.

Custom args (`mlops deploy create ... --custom-arg OUTPUT_DIR=/path`) arrive as module-level
names: when OUTPUT_DIR is given, each mask is also saved there as `<name>_Seg.png`.
"""

try:
    import redhareapiversion  # noqa: F401  (WMLA's runtime marker)
except ImportError:
    pass
import base64
import io
import json
import os

import numpy as np
from PIL import Image
from redhareapi import Kernel

# A custom arg, injected above as a module-level name when given.
OUTPUT_DIR = globals().get("OUTPUT_DIR")

DEFAULT_RULE = {
    "positive": {"min_red_minus_blue": 40},
    "negative": {"min_blue_minus_red": 40},
    "max_brightness": 200,
}


def model_folder(model_path):
    """Where the model asset was unpacked: `<model_path>/<asset name without .zip>`."""
    asset = os.environ.get("MODEL_ASSET", "model.zip")
    return os.path.join(model_path, asset[:-4] if asset.endswith(".zip") else asset)


def segment(rgb, rule):
    """Mask (H, W, 3) uint8 of an RGB tile: a 3x3 mean removes stain noise, then dark pixels are
    positive when clearly redder than blue (brown) and negative when clearly bluer than red."""
    img = rgb.astype(np.float32)
    h, w = img.shape[:2]
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    smooth = sum(pad[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    red, blue = smooth[..., 0], smooth[..., 2]
    dark = smooth.mean(axis=2) < rule["max_brightness"]
    positive = dark & (red - blue >= rule["positive"]["min_red_minus_blue"])
    negative = dark & (blue - red >= rule["negative"]["min_blue_minus_red"])
    mask = np.zeros((h, w, 3), dtype=np.uint8)
    mask[positive, 0] = 255
    mask[negative, 2] = 255
    return mask


class SegmentationKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        description = json.loads(kernel_context.get_model_description())
        model_path = description.get("model_path") or os.environ["REDHARE_MODEL_PATH"]
        weights = os.path.join(model_folder(model_path), "weights.json")
        if os.path.exists(weights):
            with open(weights) as fh:
                self.rule = {**DEFAULT_RULE, **json.load(fh)}
        else:
            Kernel.log_warn(f"{weights} not found: using the default colour rule")
            self.rule = DEFAULT_RULE
        Kernel.log_info(f"kernel {kernel_context.get_instance_id()} ready, rule {self.rule}")

    def on_task_invoke(self, task_context):
        while task_context is not None:
            request = json.loads(task_context.get_input_data())
            if not isinstance(request, dict) or "image" not in request:
                raise ValueError('the request must be JSON {"image": "<base64 RGB image>", "name": ...}')
            rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(request["image"]))).convert("RGB"))
            mask = segment(rgb, self.rule)
            out = io.BytesIO()
            Image.fromarray(mask).save(out, format="PNG")
            name = str(request.get("name") or task_context.get_id())
            if OUTPUT_DIR:
                os.makedirs(OUTPUT_DIR, exist_ok=True)
                with open(os.path.join(OUTPUT_DIR, os.path.basename(name) + "_Seg.png"), "wb") as fh:
                    fh.write(out.getvalue())
            task_context.set_output_data(
                json.dumps(
                    {
                        "name": name,
                        "mask": base64.b64encode(out.getvalue()).decode("ascii"),
                        "positive_pixels": int(np.count_nonzero(mask[..., 0])),
                        "negative_pixels": int(np.count_nonzero(mask[..., 2])),
                    }
                )
            )
            task_context = task_context.next()


if __name__ == "__main__":
    SegmentationKernel().run()
