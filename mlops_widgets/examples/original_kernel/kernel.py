"""An EDI kernel in the style of the original team's DeepLIIF kernel (our own code).

Like theirs it imports the four helper modules at the top, reads WML_SPACE_MODEL (the model
asset's name, from model.json's mk_environments), signs in with the CPD_USERNAME and CPD_API_KEY
custom args, installs only the requirements that are missing, downloads the model from the
deployment space in on_kernel_start, reads an input image from the storage volume by path
(`img_path_on_pvc`) or from the request (`local_input_image`, base64), writes its outputs back
to the volume and logs with `edi.log`. The "model" is a colour rule (`weights.json` of the
bundled example model): red marks positive (brown) pixels, blue negative (blue) ones.

Custom args: CPD_USERNAME, CPD_API_KEY (secret), VOLUME_DISPLAY_NAME.
"""

import base64
import io
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from importlib import metadata

import cpd_utils as cpdu
import numpy as np
import redhareapiversion  # noqa: F401  (WMLA's runtime marker)
import storage_volume_utils as sv
import wml_sdk_utils as wml_util
import wmla_edi_utils as edi
from PIL import Image
from redhareapi import Kernel

deploy_name = os.environ["REDHARE_MODEL_NAME"]
dir_user = os.environ["REDHARE_MODEL_PATH"]
filename_model = os.environ["WML_SPACE_MODEL"]
dir_model = os.path.join(dir_user, os.path.splitext(filename_model)[0])
dir_python_pkg = os.path.join(dir_user, "python_packages")
os.environ["VOLUME_DISPLAY_NAME"] = VOLUME_DISPLAY_NAME  # noqa: F821  (a custom arg)
os.makedirs(dir_python_pkg, exist_ok=True)
sys.path.insert(0, dir_python_pkg)
os.chdir(dir_user)


def version_tuple(text):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def missing_requirements(path="requirements.txt"):
    """The lines of requirements.txt not already satisfied (name, name>=v or name==v)."""
    missing = []
    with open(path) as fh:
        for line in fh:
            spec = line.split("#")[0].strip()
            if not spec:
                continue
            name, op, wanted = re.match(r"([A-Za-z0-9_.\-]+)\s*(>=|==)?\s*(\S*)", spec).groups()
            try:
                have = version_tuple(metadata.version(name))
            except metadata.PackageNotFoundError:
                missing.append(spec)
                continue
            if (op == ">=" and have < version_tuple(wanted)) or (op == "==" and have != version_tuple(wanted)):
                missing.append(spec)
    return missing


def segment(rgb, rule):
    """A DeepLIIF-style mask of an RGB tile by the colour rule."""
    img = rgb.astype(np.float32)
    red, blue = img[..., 0], img[..., 2]
    dark = img.mean(axis=2) < rule["max_brightness"]
    mask = np.zeros(rgb.shape, dtype=np.uint8)
    mask[dark & (red - blue >= rule["positive"]["min_red_minus_blue"]), 0] = 255
    mask[dark & (blue - red >= rule["negative"]["min_blue_minus_red"]), 2] = 255
    return mask


class MatchKernel(Kernel):
    def sign_in(self):
        credentials = {"username": CPD_USERNAME, "api_key": CPD_API_KEY}  # noqa: F821  (custom args)
        os.environ["USER_ACCESS_TOKEN"] = cpdu.get_access_token(credentials)

    def on_kernel_start(self, kernel_context):
        self.sign_in()
        pod = os.environ["MSD_POD_NAME"]
        self.log_path = f"edi_deployments/{deploy_name}/edi_logs/{pod}_inference.log"

        todo = missing_requirements()
        with open(f"requirements_{pod}.txt", "w") as fh:
            fh.writelines(f"{line}\n" for line in todo)
        if todo:
            print(f"installing {todo} into {dir_python_pkg}")
            subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--target", dir_python_pkg,
                                   "-r", f"requirements_{pod}.txt"])

        client = wml_util.get_client(
            credentials={"url": os.getenv("BASE_URL", os.getenv("RUNTIME_ENV_APSX_URL", "")),
                         "username": CPD_USERNAME, "apikey": CPD_API_KEY},  # noqa: F821
            space_id=os.environ["WML_SPACE_ID"],
        )
        if not os.path.exists(os.path.join(dir_user, filename_model)):
            wml_util.download(filename_model, client, dir_user)
            with zipfile.ZipFile(filename_model) as z:
                for name in z.namelist():  # the model zip holds plain files: refuse anything else
                    if name.startswith("/") or ".." in name.split("/"):
                        raise ValueError(f"unexpected entry {name!r} in {filename_model}")
                z.extractall(dir_model)
        with open(os.path.join(dir_model, "weights.json")) as fh:
            self.rule = json.load(fh)
        edi.log(f"kernel {pod} started with model {filename_model}", self.log_path)

    def on_task_invoke(self, task_context):
        while task_context is not None:
            task_context.set_output_data(json.dumps(self.answer(task_context.get_input_data())))
            task_context = task_context.next()

    def answer(self, body):
        self.sign_in()
        request = json.loads(body)
        request_id = str(request.get("request_id") or uuid.uuid4())
        path_source, local_image = request.get("img_path_on_pvc"), request.get("local_input_image")
        out = {"request_id": request_id, "status": "failed", "outputs": [], "msg": ""}
        if path_source is None and local_image is None:
            out["msg"] = "Error: no valid input image, provide either img_path_on_pvc or local_input_image"
            return out
        edi.log(f"{request_id}: inference request received", self.log_path)
        input_dir = f"edi_deployments/{deploy_name}/{request_id}/input_dir"
        output_dir = f"edi_deployments/{deploy_name}/{request_id}/output_dir"
        os.makedirs(input_dir, exist_ok=True)
        os.makedirs(output_dir, exist_ok=True)
        if path_source is not None:
            sv.download(path_source, input_dir)
            path = os.path.join(input_dir, path_source)
        else:
            path = os.path.join(input_dir, "local.png")
            Image.open(edi.deserialize_image(local_image)).save(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        mask = Image.fromarray(segment(np.asarray(Image.open(path).convert("RGB")), self.rule))
        mask.save(os.path.join(output_dir, f"{stem}_Seg.png"))
        if path_source is not None:
            out["outputs"] = sv.upload(output_dir)
            out["msg"] = f"{request_id}: output files are in {output_dir} (storage volume {VOLUME_DISPLAY_NAME})"  # noqa: F821
        else:
            buffer = io.BytesIO()
            mask.save(buffer, "PNG")
            out["images"] = {f"{stem}_Seg.png": base64.b64encode(buffer.getvalue()).decode()}
            out["msg"] = f"{request_id}: output images are in the images field"
        edi.log(out["msg"], self.log_path)
        out["status"] = "finished"
        return out


if __name__ == "__main__":
    MatchKernel().run()
