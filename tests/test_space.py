"""The embedded space: assets with ids, folders as zips, and metadata documents that survive
concurrent writers and crashes."""

from __future__ import annotations

import multiprocessing as mp
import os
import zipfile
from pathlib import Path

import pytest

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import DEPLOYMENT_METADATA, Space
from mlops_widgets.errors import NotFoundError


def test_local_space_implements_the_protocol(backend):
    assert isinstance(backend.space, Space)
    assert backend.space.space_id == get_backend("local", backend.workspace).space.space_id


def test_upload_file_download_delete(backend, tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(os.urandom(3000))
    asset = backend.space.upload(src)
    assert (asset.name, asset.size) == ("weights.bin", 3000)
    assert backend.space.get_asset(asset.asset_id) == asset
    out = backend.space.download(asset.asset_id, tmp_path / "out" / "w.bin")
    assert out.read_bytes() == src.read_bytes()
    backend.space.delete(asset.asset_id)
    with pytest.raises(NotFoundError, match=asset.asset_id):
        backend.space.get_asset(asset.asset_id)
    with pytest.raises(NotFoundError):
        backend.space.delete(asset.asset_id)


def test_folder_is_uploaded_as_zip_with_relative_entries(backend, tmp_path):
    folder = tmp_path / "deepliif-base"
    (folder / "sub").mkdir(parents=True)
    (folder / "kernel.py").write_text("print('k')\n")
    (folder / "sub" / "util.py").write_text("X = 1\n")
    seen: list[tuple[int, int | None]] = []
    asset = backend.space.upload(folder, progress=lambda done, total, what: seen.append((done, total)))
    assert asset.name == "deepliif-base.zip"
    out = backend.space.download(asset.asset_id, tmp_path / "dl.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["kernel.py", "sub/util.py"]
        assert zf.read("sub/util.py") == b"X = 1\n"
    assert seen[-1][0] == seen[-1][1]


def test_same_name_assets_and_keep_only_latest(backend, tmp_path):
    f = tmp_path / "model.pt"
    f.write_text("v1")
    first = backend.space.upload(f)
    f.write_text("v2")
    second = backend.space.upload(f)
    (tmp_path / "other.txt").write_text("o")
    other = backend.space.upload(tmp_path / "other.txt")
    assert [a.asset_id for a in backend.space.list_assets("model.pt")] == [second.asset_id, first.asset_id]
    latest = backend.space.list_assets(keep_only_latest=True)
    assert {a.asset_id for a in latest} == {second.asset_id, other.asset_id}


def test_upload_of_missing_path_is_a_clear_error(backend, tmp_path):
    with pytest.raises(NotFoundError, match="no such file"):
        backend.space.upload(tmp_path / "nope")
    assert backend.space.list_assets() == []


def _add_entry(root: str, key: str, barrier) -> None:
    space = get_backend("local", root).space
    barrier.wait()
    space.update_document(DEPLOYMENT_METADATA, lambda doc: doc.__setitem__(key, {"model_name": key}))


@pytest.mark.slow  # many processes or threads at once: out of the fast tier
def test_twenty_concurrent_writers_lose_no_entry(workspace):
    assert get_backend("local", workspace).space.space_id  # the database exists before the race
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(20)
    procs = [
        ctx.Process(target=_add_entry, args=(str(workspace.root), f"asset-{i}", barrier)) for i in range(20)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    doc = get_backend("local", workspace).space.read_document(DEPLOYMENT_METADATA)
    assert sorted(doc) == sorted(f"asset-{i}" for i in range(20))


def _crash_mid_update(root: str) -> None:
    space = get_backend("local", root).space

    def change(doc):
        doc["half"] = {"model_name": "written"}
        os._exit(9)  # the process dies inside the transaction

    space.update_document(DEPLOYMENT_METADATA, change)


def test_crash_mid_write_leaves_the_previous_document(workspace):
    space = get_backend("local", workspace).space
    space.update_document(DEPLOYMENT_METADATA, lambda doc: doc.__setitem__("kept", {"model_name": "a"}))
    p = mp.get_context("spawn").Process(target=_crash_mid_update, args=(str(workspace.root),))
    p.start()
    p.join(60)
    assert p.exitcode == 9
    assert space.read_document(DEPLOYMENT_METADATA) == {"kept": {"model_name": "a"}}
    # and the space is not stuck: the next writer goes through
    space.update_document(DEPLOYMENT_METADATA, lambda doc: doc.__setitem__("next", {}))
    assert sorted(space.read_document(DEPLOYMENT_METADATA)) == ["kept", "next"]


def test_a_failed_upload_leaves_no_partial_file(backend, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 10)
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    (folder / "link").symlink_to(outside)
    with pytest.raises(Exception, match="outside the folder"):
        backend.space.upload(folder)
    assert backend.space.list_assets() == []
    assert [p.name for p in Path(backend.workspace.root, "assets").iterdir()] == []


def test_one_space_serves_several_threads(backend, tmp_path):
    import threading

    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            backend.space.update_document(DEPLOYMENT_METADATA, lambda doc: doc.__setitem__(f"t{i}", {}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(backend.space.read_document(DEPLOYMENT_METADATA)) == ["t0", "t1", "t2", "t3"]


# --- staging is all or nothing; leftovers of killed uploads go; concurrent replacements -------------


def _example_entry() -> dict:
    from mlops_widgets.config import load_config
    from mlops_widgets.examples import CONFIG

    (entry,) = load_config(CONFIG).entries.values()
    return entry


def test_a_refused_dependency_leaves_no_model_asset(backend, tmp_path, example_paths):
    from mlops_widgets.ops import space

    dependency = tmp_path / "deployment"
    dependency.mkdir()
    (dependency / "kernel.py").write_text("# kernel\n")
    (dependency / "escape").symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "elsewhere.txt").write_text("not to be packed")
    with pytest.raises(Exception, match="outside the folder"):
        space.stage(backend, example_paths.model, dependency, _example_entry())
    assert backend.space.list_assets() == []
    assert space.list_entries(backend) == {}


def test_an_abandoned_upload_is_removed_when_the_space_next_opens(workspace):
    import fcntl

    assets = workspace.dir("assets")
    abandoned = assets / ".upload-killed.tmp"  # what an upload killed with -9 leaves
    abandoned.write_bytes(b"half")
    live = assets / ".upload-live.tmp"  # an upload another process is writing right now
    live.write_bytes(b"still coming")
    fd = os.open(live, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        get_backend("local", workspace).space.list_assets()
        assert not abandoned.exists()
        assert live.exists()
    finally:
        os.close(fd)


def test_a_stage_whose_entry_another_stage_replaced_meanwhile_fails_clearly(backend, example_paths):
    """Two `stage -f` of the same files: the second to write its entry finds the entries of that
    model changed since it checked, says so, and takes back what it uploaded; the first stands."""
    from mlops_widgets.errors import ConflictError
    from mlops_widgets.ops import space

    entry = _example_entry()
    first = space.stage(backend, example_paths.model, example_paths.deployment, entry)
    interleaved: dict = {}

    def other_stage_meanwhile(done: int, total: int | None, name: str) -> None:
        if not interleaved:  # once, while this stage uploads its model
            interleaved.update(
                space.stage(
                    backend, example_paths.model, example_paths.deployment, entry, on_clash="overwrite"
                )
            )

    with pytest.raises(ConflictError, match="changed by another command") as refused:
        space.stage(
            backend,
            example_paths.model,
            example_paths.deployment,
            entry,
            on_clash="overwrite",
            progress=other_stage_meanwhile,
        )
    assert refused.value.hint.action == "stage.retry"
    assert list(space.list_entries(backend)) == [interleaved["model_asset_id"]]
    assert {a.asset_id for a in backend.space.list_assets()} == {
        interleaved["model_asset_id"],
        interleaved["dependency_asset_id"],
    }
    assert first["model_asset_id"] not in {a.asset_id for a in backend.space.list_assets()}


def _stage_force(root: str, model: str, dependency: str, queue) -> None:
    from mlops_widgets.errors import MlopsError
    from mlops_widgets.ops import space

    backend = get_backend("local", root)
    try:
        out = space.stage(backend, model, dependency, _example_entry(), on_clash="overwrite")
        queue.put(("ok", out["model_asset_id"]))
    except MlopsError as exc:
        queue.put(("error", str(exc)))


@pytest.mark.slow  # many processes or threads at once: out of the fast tier
def test_concurrent_stage_force_succeed_or_say_another_command_changed_the_entry(backend, example_paths):
    from mlops_widgets.ops import space

    space.stage(backend, example_paths.model, example_paths.deployment, _example_entry())
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=_stage_force,
            args=(
                str(backend.workspace.root),
                str(example_paths.model),
                str(example_paths.deployment),
                queue,
            ),
        )
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    errors = [text for kind, text in results if kind == "error"]
    assert all("another command" in text for text in errors), errors
    winners = [text for kind, text in results if kind == "ok"]
    assert winners
    entries = space.list_entries(backend)
    assert len(entries) == 1 and next(iter(entries)) in winners
    # no orphan: the space holds exactly the surviving entry's model and dependency
    (entry,) = entries.values()
    assert sorted(a.name for a in backend.space.list_assets()) == sorted(
        [entry["model_asset"], entry["wmla_deployment"]["dependency_filename"]]
    )


def _stage_in_process(args: tuple[str, str, str]) -> str:
    """One `stage -f` in a process of its own (as six shells would run it): its asset id, or
    the ConflictError it said."""
    from mlops_widgets.errors import ConflictError
    from mlops_widgets.ops import space

    home, model, dependency = args
    backend = get_backend("local", home)
    try:
        return space.stage(backend, model, dependency, _example_entry(), on_clash="overwrite")[
            "model_asset_id"
        ]
    except ConflictError as exc:
        return f"conflict: {exc.message}"


@pytest.mark.slow  # six processes at once
def test_concurrent_forced_stages_print_only_ids_that_exist(backend, example_paths):
    """Issue 23: five of six concurrent `stage -f` printed asset ids that no longer existed.
    Each stage now either gives the id staged at the end, or says it lost to another."""
    from helpers import wait_for

    from mlops_widgets.ops import space

    space.stage(backend, example_paths.model, example_paths.deployment, _example_entry())
    args = (str(backend.workspace.root), str(example_paths.model), str(example_paths.deployment))
    # All six have started before any writes (the database held meanwhile): they ran at the
    # same time, however the machine schedules their processes.
    held = backend.workspace.connect()
    held.execute("BEGIN IMMEDIATE")
    with mp.get_context("spawn").Pool(6) as pool:
        pending = pool.map_async(_stage_in_process, [args] * 6)
        stages = backend.workspace.root / "tmp" / "stages"
        wait_for(lambda: len(list(stages.glob("*/*.lock"))) == 6, what="six stages started")
        held.execute("ROLLBACK")
        outcomes = pending.get(timeout=600)
    held.close()
    staged = space.list_entries(backend)
    printed = [o for o in outcomes if not o.startswith("conflict: ")]
    assert len(staged) == 1 and printed, outcomes
    assert all(asset_id in staged for asset_id in printed), (outcomes, list(staged))
    lost = [o for o in outcomes if o.startswith("conflict: ")]
    assert all("another command" in o for o in lost), lost
