"""An EDI kernel in the style of the original team's DeepLIIF kernel, serving the DeepLIIF network.

DeepLIIF translates an IHC tile into four modalities (Hematoxylin, mpIF DAPI, Lap2, Ki67) with
four ResNet generators (resnet_9blocks) and segments it with five U-Net generators (unet_512),
one on the IHC tile and one on each modality, their outputs averaged, as `DeepLIIFModel.forward`
does. The generators come from the `deepliif` package (`deepliif_networks.py` beside this file).

Weights: the model asset (WML_SPACE_MODEL, unpacked beside this file by the deployment) when it
holds DeepLIIF's checkpoints (`latest_net_G1.pth` ... `latest_net_G55.pth`), else random weights
drawn with a fixed seed (every kernel the same network), which is what the benchmark measures.

Requests: the original's {"request_id": "...", "local_input_image": "<base64 PNG>"}, answered
{"request_id", "status": "finished", "images": {"<stem>_Seg.png": "<base64 PNG>"}, "msg"}; and the
example kernel's {"image": "<base64 PNG>", "name": "tile_001"}, answered {"name", "mask"} (what
`mlops`'s batch scoring sends). A tile whose sides are not multiples of 512 is resized to 512x512
for the network and its mask back to the tile's size.
Custom args (optional): TORCH_THREADS (default: the kernel's CPUs).
"""

import base64
import io
import json
import os
import uuid

import deepliif_networks
import numpy as np
import redhareapiversion  # noqa: F401  (WMLA's runtime marker)
import torch
import wmla_edi_utils as edi
from PIL import Image
from redhareapi import Kernel

deploy_name = os.environ.get("REDHARE_MODEL_NAME", "deepliif")
dir_user = os.environ.get("REDHARE_MODEL_PATH", os.path.dirname(os.path.abspath(__file__)))
filename_model = os.environ.get("WML_SPACE_MODEL", "")
dir_model = os.path.join(dir_user, os.path.splitext(filename_model)[0]) if filename_model else ""
TRANSLATIONS = ["G1", "G2", "G3", "G4"]
SEGMENTATIONS = ["G51", "G52", "G53", "G54", "G55"]


def device():
    """The kernel's GPU where it was given one (CUDA_VISIBLE_DEVICES, enable_gpus), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_networks(checkpoints=""):
    """DeepLIIF's nine generators in eval mode on `device()`, from `checkpoints` when it holds them."""
    networks = deepliif_networks.load()
    torch.manual_seed(0)
    nets = {}
    for name in TRANSLATIONS:
        nets[name] = networks.define_G(
            3, 3, 64, "resnet_9blocks", "batch", True, "normal", 0.02, [], "reflect"
        )
    for name in SEGMENTATIONS:
        nets[name] = networks.define_G(3, 3, 64, "unet_512", "batch", True, "normal", 0.02, [])
    for name, net in nets.items():
        path = os.path.join(checkpoints, f"latest_net_{name}.pth") if checkpoints else ""
        if path and os.path.exists(path):
            net.load_state_dict(torch.load(path, map_location="cpu"))
        net.to(device()).eval()
    return nets


def segment(nets, rgb):
    """The segmentation of one RGB tile (H, W, 3 uint8; H and W multiples of 512) as RGB uint8."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(127.5).sub(1.0)
    real_a = tensor.unsqueeze(0).to(device())
    with torch.inference_mode():
        modalities = [nets[name](real_a) for name in TRANSLATIONS]
        inputs = [real_a, *modalities]
        seg = sum(nets[name](inputs[i]) for i, name in enumerate(SEGMENTATIONS)) / len(SEGMENTATIONS)
    out = seg[0].add(1.0).mul(127.5).clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
    return out


class DeepLIIFKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        threads = int(globals().get("TORCH_THREADS") or len(os.sched_getaffinity(0)))
        torch.set_num_threads(threads)
        pod = os.environ.get("MSD_POD_NAME", "local")
        self.log_path = f"edi_deployments/{deploy_name}/edi_logs/{pod}_inference.log"
        os.makedirs(os.path.dirname(os.path.join(dir_user, self.log_path)), exist_ok=True)
        self.nets = build_networks(dir_model)
        edi.log(
            f"kernel {pod} started: DeepLIIF generators on {threads} thread(s)",
            os.path.join(dir_user, self.log_path),
            save_log_to_volume=False,
        )

    def on_task_invoke(self, task_context):
        while task_context is not None:
            task_context.set_output_data(json.dumps(self.answer(task_context.get_input_data())))
            task_context = task_context.next()

    def mask_png(self, encoded):
        """The base64 PNG mask of a base64 image."""
        image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
        size = image.size
        if size[0] % 512 or size[1] % 512:
            image = image.resize((512, 512), Image.BILINEAR)
        mask = Image.fromarray(segment(self.nets, np.asarray(image)))
        if mask.size != size:
            mask = mask.resize(size, Image.NEAREST)
        buffer = io.BytesIO()
        mask.save(buffer, "PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    def answer(self, body):
        request = json.loads(body)
        if "image" in request:  # the example kernel's request, as batch scoring sends it
            return {"name": request.get("name"), "mask": self.mask_png(request["image"])}
        request_id = str(request.get("request_id") or uuid.uuid4())
        local_image = request.get("local_input_image")
        if local_image is None:
            return {"request_id": request_id, "status": "failed", "msg": "Error: give local_input_image"}
        return {
            "request_id": request_id,
            "status": "finished",
            "images": {"tile_Seg.png": self.mask_png(local_image)},
            "msg": f"{request_id}: output images are in the images field",
        }


if __name__ == "__main__":
    DeepLIIFKernel().run()
