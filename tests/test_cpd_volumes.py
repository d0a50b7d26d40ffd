"""Storage volumes on Cloud Pak for Data behind the Volumes protocol, against the fake's
volumes REST API (the same calls the original's storage_volume_utils made)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.fixtures import seed_volume

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.volumes_protocol import Volumes
from mlops_widgets.errors import MlopsError, NotFoundError

DAY = 86400.0


def test_volumes_round_trip(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    vols = cpd_backend.volumes
    assert isinstance(vols, Volumes)
    now = time.time()
    seed_volume(fake_cpd, "Vol", "gt", {"a_Seg.png": b"a", "b_Seg.PNG": b"bb", "notes.txt": b"n"}, now)
    seed_volume(fake_cpd, "Vol", "gt", {"old_Seg.png": b"o"}, now - 30 * DAY)
    seed_volume(fake_cpd, "Vol", "gt/sub", {"deep.png": b"d"}, now)
    fake_cpd.volumes.create("Other")
    assert vols.list_volumes() == ["Other", "Vol"]

    assert [f.path for f in vols.list_files("Vol", "gt")] == [
        "gt/a_Seg.png",
        "gt/b_Seg.PNG",
        "gt/notes.txt",
        "gt/old_Seg.png",
    ]
    assert [f.path for f in vols.list_files("Vol", "gt", recursive=True)][-1] == "gt/sub/deep.png"
    recent_png = vols.list_files("Vol", "gt", most_recent=7, extensions=[".png"])
    assert [(f.path, f.size) for f in recent_png] == [("gt/a_Seg.png", 1), ("gt/b_Seg.PNG", 2)]
    assert vols.read("Vol", "gt/a_Seg.png") == b"a"

    written = vols.write("Vol", "pred/x_Seg.png", b"xyz")
    assert (written.path, written.size) == ("pred/x_Seg.png", 3)
    assert fake_cpd.volumes.volumes["Vol"]["files"]["pred/x_Seg.png"][0] == b"xyz"

    source = tmp_path / "src"
    (source / "inner").mkdir(parents=True)
    (source / "one.png").write_bytes(b"1")
    (source / "inner" / "two.png").write_bytes(b"22")
    seen = []
    up = vols.upload_folder("Vol", source, "uploaded", progress=lambda d, t, n: seen.append((d, t)))
    assert [f.path for f in up] == ["uploaded/inner/two.png", "uploaded/one.png"] and seen[-1] == (2, 2)

    dest = vols.download_folder("Vol", "gt", tmp_path / "copy", most_recent=7, extensions=[".png"])
    assert sorted(p.name for p in dest.iterdir()) == ["a_Seg.png", "b_Seg.PNG"]  # no temporary left
    assert abs(os.stat(dest / "a_Seg.png").st_mtime - now) < 1  # the volume's modification time
    assert vols.local_path("Vol", "gt") is None  # nothing of a cluster volume lies here


def test_volume_errors_name_what_is_wrong(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    vols = cpd_backend.volumes
    fake_cpd.volumes.create("Vol")
    with pytest.raises(NotFoundError, match="folder nope does not exist on storage volume 'Vol'"):
        vols.list_files("Vol", "nope")
    with pytest.raises(NotFoundError, match="file gt/x.png does not exist on storage volume 'Vol'"):
        vols.read("Vol", "gt/x.png")
    with pytest.raises(NotFoundError, match="'Missing'"):
        vols.list_files("Missing", "gt")
    for bad in ("../etc", "/abs", "a//b"):
        with pytest.raises(MlopsError, match="storage volume"):
            vols.read("Vol", bad)
    assert fake_cpd.router.log[-1][1].startswith("/zen-volumes/Missing/")  # bad paths never sent
