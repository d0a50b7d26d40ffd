"""The helper modules the original kernels import (`mlops_widgets/edi_helpers`), called with the
original's arguments: on the local backend they act on the workspace (its space, its volumes,
the local service's token); elsewhere on Cloud Pak for Data's REST services (the fake cluster)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)

from mlops_widgets import edi_helpers
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import KERNEL_PATH

MODULES = [m.removesuffix(".py") for m in edi_helpers.MODULES]


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The four modules imported as a kernel imports them: top-level, from their folder."""
    monkeypatch.syspath_prepend(str(edi_helpers.HERE))
    for name in MODULES:
        sys.modules.pop(name, None)
    yield SimpleNamespace(**{name: __import__(name) for name in MODULES})
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def local(backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Backend:
    backend.space.space_id  # noqa: B018  (creates the workspace's space)
    monkeypatch.setenv("MLOPS_BACKEND", "local")
    monkeypatch.setenv("MLOPS_HOME", str(backend.workspace.root))
    monkeypatch.setenv("MLOPS_VOLUMES", str(backend.workspace.root / "volumes"))
    monkeypatch.setenv("VOLUME_DISPLAY_NAME", "vol")
    monkeypatch.chdir(tmp_path)
    return backend


def test_space_assets_on_the_local_backend(local: Backend, helpers: SimpleNamespace, tmp_path: Path) -> None:
    wml = helpers.wml_sdk_utils
    client = wml.get_client(space_id=local.space.space_id)
    assert client.default_space_id == local.space.space_id
    with pytest.raises(LookupError, match="not other-space"):
        wml.get_client(space_id="other-space")
    (tmp_path / "weights.bin").write_bytes(b"old")
    wml.upload("weights.bin", client)
    (tmp_path / "weights.bin").write_bytes(b"new")
    wml.upload("weights.bin", client)
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "a.py").write_text("a")
    wml.upload(str(folder), client)
    # what the helpers upload is in the space as mlops-widgets sees it
    assert [a.name for a in local.space.list_assets()] == ["code.zip", "weights.bin", "weights.bin"]
    assert sorted(wml.list_files(client).values()) == ["code.zip", "weights.bin", "weights.bin"]
    assert sorted(wml.list_files(client, keep_only_latest=True).values()) == ["code.zip", "weights.bin"]
    assert list(wml.list_files(client, ext=".zip").values()) == ["code.zip"]
    target = tmp_path / "into"
    target.mkdir()
    assert wml.download("weights.bin", client, str(target), return_status=True) is True
    assert (target / "weights.bin").read_bytes() == b"new"  # the newest of the name
    assert wml.download("missing.bin", client, str(target), return_status=True) is False
    wml.upload("weights.bin", client, overwrite=True)
    assert len(local.space.list_assets("weights.bin")) == 1


def test_storage_volume_on_the_local_backend(
    local: Backend, helpers: SimpleNamespace, tmp_path: Path
) -> None:
    sv = helpers.storage_volume_utils
    volume = local.workspace.root / "volumes" / "vol"
    assert sv.list_files("nothing/here") is None
    out = tmp_path / "out" / "r1"
    out.mkdir(parents=True)
    (out / "a_Seg.png").write_bytes(b"png")
    (out / "notes.txt").write_text("t")
    assert sorted(sv.upload("out")) == ["out/r1/a_Seg.png", "out/r1/notes.txt"]  # same relative path
    assert (volume / "out" / "r1" / "a_Seg.png").read_bytes() == b"png"
    sv.upload("out/r1/notes.txt", "flat", keep_source_folder_structure=False)
    assert (volume / "flat" / "notes.txt").is_file()

    listing = sv.list_files("out")
    assert [(m["path"], m["type"]) for m in listing] == [
        ("r1", "directory"),
        ("r1/a_Seg.png", "file"),
        ("r1/notes.txt", "file"),
    ]
    png = next(m for m in listing if m["path"] == "r1/a_Seg.png")
    assert png["file_extension"] == ".png" and png["size"] == 3 and png["last_modified"].endswith("GMT")
    assert [m["path"] for m in sv.list_files("out", file_extensions=[".png"])] == ["r1/a_Seg.png"]
    assert [m["path"] for m in sv.list_files("out", params={"recursive": "false"})] == ["r1"]
    old = time.time() - 10 * 86400
    os.utime(volume / "out" / "r1" / "notes.txt", (old, old))
    assert [m["path"] for m in sv.list_files("out", files_only=True, most_recent=7)] == ["r1/a_Seg.png"]
    assert sv.file_or_dir("out/r1") == "directory" and sv.file_or_dir("out/r1/a_Seg.png") == "file"
    assert sv.file_or_dir("not/yet.png") == "file" and sv.file_or_dir("not/yet") == "directory"

    dest = tmp_path / "input_dir"
    dest.mkdir()
    sv.download("out/r1/a_Seg.png", str(dest))  # the volume path kept under the folder
    assert (dest / "out" / "r1" / "a_Seg.png").read_bytes() == b"png"
    sv.download("out", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "r1" / "notes.txt").read_text() == "t"
    with pytest.raises(ValueError, match="may not contain '..'"):
        sv.download("../../etc/passwd", str(dest))
    with pytest.raises(FileNotFoundError):
        sv.download("missing.png", str(dest))


def test_log_and_images(
    local: Backend, helpers: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    edi = helpers.wmla_edi_utils
    monkeypatch.setenv("MSD_POD_NAME", "pod-1")
    path = edi.log(["first", "second"], "logs/")
    edi.log("third", "logs/")
    assert path == "logs/pod-1.log"
    lines = (tmp_path / "logs" / "pod-1.log").read_text().splitlines()
    assert lines[0].startswith("[") and lines[1:3] == ["first", "second"] and "third" in lines
    mirrored = local.workspace.root / "volumes" / "vol" / "logs" / "pod-1.log"
    assert mirrored.read_text() == (tmp_path / "logs" / "pod-1.log").read_text()
    edi.log("local only", "logs/other.log", save_log_to_volume=False)
    assert not (mirrored.parent / "other.log").exists()
    img = Image.new("RGB", (4, 3), (10, 20, 30))
    back = Image.open(edi.deserialize_image(edi.serialize_image(img)))
    assert back.size == (4, 3) and back.getpixel((0, 0)) == (10, 20, 30)


def test_local_token_is_the_services(local: Backend, helpers: SimpleNamespace) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        helpers.cpd_utils.get_access_token({"username": "u", "api_key": "k"})
    info = local.workspace.root / "inference" / "service.json"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text('{"token": "tok-123"}')
    assert helpers.cpd_utils.get_access_token({"username": "u", "api_key": "k"}) == "tok-123"


def test_rest_mode_against_the_cluster(
    cpd_env: dict[str, str],
    fake_cpd: FakeCpd,
    helpers: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MLOPS_BACKEND", "cpd")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cpd_env["MLOPS_CPD_CA_BUNDLE"])
    monkeypatch.chdir(tmp_path)
    cpdu, sv = helpers.cpd_utils, helpers.storage_volume_utils
    with pytest.raises(RuntimeError, match="HTTP 401"):
        cpdu.get_access_token({"username": cpd_env["USERNAME"], "api_key": "wrong"})
    token = cpdu.get_access_token({"username": cpd_env["USERNAME"], "api_key": cpd_env["APIKEY"]})
    monkeypatch.setenv("USER_ACCESS_TOKEN", token)
    fake_cpd.volumes.create("DeepLIIFData")
    fake_cpd.volumes.put("DeepLIIFData", "inputs/tile.png", b"image")
    assert [m["path"] for m in sv.list_files("inputs")] == ["tile.png"]
    assert sv.list_files("absent") is None
    dest = tmp_path / "in"
    dest.mkdir()
    sv.download("inputs/tile.png", str(dest))
    assert (dest / "inputs" / "tile.png").read_bytes() == b"image"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tile_Seg.png").write_bytes(b"mask")
    assert sv.upload("out") == ["out/tile_Seg.png"]
    assert fake_cpd.volumes.volumes["DeepLIIFData"]["files"]["out/tile_Seg.png"][0] == b"mask"


@pytest.mark.parametrize("cpd_version", ["4.8.5", "5.1.0"], indirect=True)  # WML SDK, then watsonx.ai
def test_space_assets_over_the_cluster(
    cpd_env: dict[str, str],
    fake_cpd: FakeCpd,
    helpers: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """wml_sdk_utils on Cloud Pak for Data: IBM's own client, as the original kernel used it."""
    monkeypatch.setenv("MLOPS_BACKEND", "cpd")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cpd_env["MLOPS_CPD_CA_BUNDLE"])
    monkeypatch.chdir(tmp_path)
    wml = helpers.wml_sdk_utils
    client = wml.get_client(
        credentials={
            "url": cpd_env["BASE_URL"],
            "username": cpd_env["USERNAME"],
            "apikey": cpd_env["APIKEY"],
        },
        space_id=cpd_env["SPACE_ID"],
    )
    (tmp_path / "model.zip").write_bytes(b"weights")
    wml.upload("model.zip", client)
    assert list(wml.list_files(client).values()) == ["model.zip"]
    (tmp_path / "into").mkdir()
    assert wml.download("model.zip", client, "into", return_status=True) is True
    assert (tmp_path / "into" / "model.zip").read_bytes() == b"weights"


def oldest_python() -> str | None:
    """A Python 3.8 of this machine (the oldest a runtime may have), where there is one."""
    import subprocess

    candidates = [
        *map(str, Path("~/.pyenv/versions").expanduser().glob("3.8.*/bin/python3.8")),
        shutil.which("python3.8"),
    ]
    for python in filter(None, candidates):
        if subprocess.run([python, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return python
    return None


@pytest.mark.parametrize("interpreter", ["service's", "3.8"])
def test_local_helpers_need_only_the_standard_library(
    local: Backend, tmp_path: Path, interpreter: str
) -> None:
    """A kernel may run on an interpreter without our packages, as old as Python 3.8: with `-S`
    (no site-packages) the helpers and the kernel shim still list the space and use the volume."""
    import subprocess

    python = sys.executable if interpreter == "service's" else oldest_python()
    if python is None:
        pytest.skip("no Python 3.8 on this machine")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("a")
    script = (
        "import storage_volume_utils as sv, wml_sdk_utils as w, wmla_edi_utils as edi, cpd_utils, redhareapi\n"
        "import sys; assert 'requests' not in sys.modules and 'numpy' not in sys.modules\n"
        "up = sv.upload('out')\n"
        "sv.download('out/a.txt', 'back.txt')\n"
        "print(up, list(w.list_files(w.get_client()).values()), open('back.txt').read())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(edi_helpers.HERE), str(KERNEL_PATH)])}
    done = subprocess.run(
        [python, "-S", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['out/a.txt'] [] a"
    assert (local.workspace.root / "volumes" / "vol" / "out" / "a.txt").read_text() == "a"
