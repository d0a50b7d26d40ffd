"""The pure monitors layer: providers against an independent implementation, recency, thresholds,
the registry (versioned ids, entry points)."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.monitors import (
    MetricProvider,
    MonitorDefinition,
    ProviderError,
    ProviderInput,
    Threshold,
    known_definitions,
    registry,
)
from mlops_widgets.monitors.definitions import SEGMENTATION
from mlops_widgets.monitors.thresholds import (
    DIRECTION_OF,
    LIMIT_TYPES,
    check_instance_thresholds,
    effective_thresholds,
    metric_id,
    parse_thresholds,
    violations,
)
from mlops_widgets.workspace import Workspace

W, H = 23, 17
NAMES = ("precision", "recall", "f1", "Dice", "IOU", "PixAcc")


# --- an independent, deliberately plain implementation of the definition ---------------------


def _reference_mask_metrics(gt: list[bool], pred: list[bool]) -> dict[str, float]:
    tp = sum(1 for g, p in zip(gt, pred, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gt, pred, strict=True) if p and not g)
    fn = sum(1 for g, p in zip(gt, pred, strict=True) if g and not p)
    tn = len(gt) - tp - fp - fn
    if tp == 0:
        v = 0.0 if (any(gt) or fp > 0) else 1.0
        return dict.fromkeys(NAMES, v)
    p = tp / (tp + fp)
    r = tp / (tp + fn)
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r),
        "Dice": 2 * tp / (2 * tp + fp + fn),
        "IOU": tp / (tp + fp + fn),
        "PixAcc": (tp + tn) / len(gt),
    }


def _reference(dir_gt: Path, dir_pred: Path) -> dict[str, float]:
    names = sorted(n for n in os.listdir(dir_gt) if n.endswith("_Seg.png") and (dir_pred / n).exists())
    per_image = []
    for n in names:
        g = Image.open(dir_gt / n).convert("RGB").tobytes()  # r, g, b, r, g, b, ...
        p = Image.open(dir_pred / n).convert("RGB").tobytes()
        pos = _reference_mask_metrics([v > 0 for v in g[0::3]], [v > 0 for v in p[0::3]])
        neg = _reference_mask_metrics([v > 0 for v in g[2::3]], [v > 0 for v in p[2::3]])
        per_image.append((pos, neg))
    out = {}
    for m in NAMES:
        pos = sum(pi[0][m] for pi in per_image) / len(per_image)
        neg = sum(pi[1][m] for pi in per_image) / len(per_image)
        out[m] = (pos + neg) / 2 * 100
        out[f"{m}_positive"] = pos
        out[f"{m}_negative"] = neg
    return out


def _mask_image(rng: random.Random, pos_p: float, neg_p: float, mode: str = "RGB") -> Image.Image:
    img = Image.new("RGB", (W, H))
    px = img.load()
    for y in range(H):
        for x in range(W):
            r = rng.choice([0, 1, 200, 255]) if rng.random() < pos_p else 0
            b = rng.choice([3, 255]) if rng.random() < neg_p else 0
            px[x, y] = (r, rng.randrange(256), b)
    return img.convert(mode) if mode != "RGB" else img


def _write(folder: Path, name: str, img: Image.Image) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    img.save(path)
    return path


@pytest.fixture
def mask_dirs(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(7)
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for i in range(6):
        _write(gt, f"img{i}_Seg.png", _mask_image(rng, 0.3, 0.2))
        _write(pred, f"img{i}_Seg.png", _mask_image(rng, 0.25, 0.3))
    # empty ground truth, something predicted -> 0; both empty -> 1; GT present, nothing predicted -> 0
    _write(gt, "emptygt_Seg.png", _mask_image(rng, 0.0, 0.0))
    _write(pred, "emptygt_Seg.png", _mask_image(rng, 0.2, 0.2))
    _write(gt, "bothempty_Seg.png", _mask_image(rng, 0.0, 0.0))
    _write(pred, "bothempty_Seg.png", _mask_image(rng, 0.0, 0.0))
    _write(gt, "emptypred_Seg.png", _mask_image(rng, 0.3, 0.3))
    _write(pred, "emptypred_Seg.png", _mask_image(rng, 0.0, 0.0))
    # a palette image and an RGBA one decode like RGB
    _write(gt, "rgba_Seg.png", _mask_image(rng, 0.4, 0.4, "RGBA"))
    _write(pred, "rgba_Seg.png", _mask_image(rng, 0.4, 0.4, "P"))
    # ignored: not *_Seg.png, or present in only one folder
    _write(gt, "img0_Hema.png", _mask_image(rng, 0.5, 0.5))
    _write(pred, "img0_Hema.png", _mask_image(rng, 0.1, 0.1))
    _write(gt, "onlygt_Seg.png", _mask_image(rng, 0.5, 0.5))
    return gt, pred


def _segmentation(inputs: ProviderInput) -> dict[str, float]:
    return registry.provider("segmentation_metrics").evaluate(inputs)


def test_segmentation_matches_independent_implementation(mask_dirs: tuple[Path, Path]) -> None:
    gt, pred = mask_dirs
    got = _segmentation(ProviderInput(gt, pred))
    want = _reference(gt, pred)
    assert list(got) == SEGMENTATION.metric_names
    for name in SEGMENTATION.metric_names:
        assert got[name] == pytest.approx(want[name], abs=1e-9, rel=0), name


def test_segmentation_empty_masks_follow_the_definition(tmp_path: Path) -> None:
    rng = random.Random(1)
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    cases = {  # (gt pos, gt neg) / (pred pos, pred neg) probabilities
        "a": ((0.0, 0.0), (0.3, 0.0)),  # GT empty, FP > 0 -> 0 ; neg both empty -> 1
        "b": ((0.0, 0.0), (0.0, 0.0)),  # both empty -> 1, 1
        "c": ((0.4, 0.4), (0.0, 0.0)),  # nothing predicted -> 0, 0
    }
    for name, ((gp, gn), (pp, pn)) in cases.items():
        _write(gt, f"{name}_Seg.png", _mask_image(rng, gp, gn))
        _write(pred, f"{name}_Seg.png", _mask_image(rng, pp, pn))
    got = _segmentation(ProviderInput(gt, pred))
    for m in NAMES:
        assert got[f"{m}_positive"] == pytest.approx(1 / 3, abs=1e-12)
        assert got[f"{m}_negative"] == pytest.approx(2 / 3, abs=1e-12)
        assert got[m] == pytest.approx(50.0, abs=1e-9)


def test_segmentation_streams_in_chunks_and_stays_exact(
    mask_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_widgets.monitors import segmentation

    gt, pred = mask_dirs
    monkeypatch.setattr(segmentation, "_CHUNK", 3)  # several chunks plus a remainder
    got = _segmentation(ProviderInput(gt, pred))
    want = _reference(gt, pred)
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want)


def test_segmentation_needs_three_recent_pairs(mask_dirs: tuple[Path, Path]) -> None:
    gt, pred = mask_dirs
    now = time.time()
    old = now - 10 * 86400
    for folder in (gt, pred):
        for f in folder.iterdir():
            os.utime(f, (old, old))
    for n in ("img1_Seg.png", "img2_Seg.png"):
        os.utime(gt / n, (now, now))
        os.utime(pred / n, (now, now))
    with pytest.raises(ProviderError) as err:
        _segmentation(ProviderInput(gt, pred, most_recent=5, now=now))
    msg = str(err.value)
    assert "Needs at least 3 newly created files in the past 5 days" in msg
    assert "currently only 2 files can be found" in msg
    # only the recent pairs are evaluated once there are enough
    os.utime(gt / "img3_Seg.png", (now, now))
    os.utime(pred / "img3_Seg.png", (now, now))
    recent = _segmentation(ProviderInput(gt, pred, most_recent=5, now=now))
    sub_gt, sub_pred = gt.parent / "sgt", gt.parent / "spred"
    for n in ("img1_Seg.png", "img2_Seg.png", "img3_Seg.png"):
        _write(sub_gt, n, Image.open(gt / n))
        _write(sub_pred, n, Image.open(pred / n))
    want = _reference(sub_gt, sub_pred)
    assert all(abs(recent[k] - want[k]) < 1e-9 for k in want)


def test_segmentation_errors_name_the_problem(tmp_path: Path) -> None:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    with pytest.raises(ProviderError, match=str(gt)):
        _segmentation(ProviderInput(gt, pred))
    rng = random.Random(3)
    for i in range(3):
        _write(gt, f"{i}_Seg.png", _mask_image(rng, 0.3, 0.3))
        _write(pred, f"{i}_Seg.png", _mask_image(rng, 0.3, 0.3))
    Image.new("RGB", (5, 5)).save(pred / "1_Seg.png")
    with pytest.raises(ProviderError, match=r"1_Seg.png: sizes differ: ground truth 23x17, prediction 5x5"):
        _segmentation(ProviderInput(gt, pred))
    (pred / "1_Seg.png").write_bytes(b"not a png")
    with pytest.raises(ProviderError, match="cannot read image"):
        _segmentation(ProviderInput(gt, pred))


def test_generic_counts_total_and_recent(tmp_path: Path) -> None:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    now = time.time()
    for folder, n_old, n_new in ((gt, 3, 2), (pred, 1, 4)):
        folder.mkdir()
        for i in range(n_old + n_new):
            f = folder / f"{i}.png"
            f.write_bytes(b"x")
            t = now - 3 * 86400 if i < n_old else now - 3600
            os.utime(f, (t, t))
        (folder / ".hidden").write_bytes(b"x")
        (folder / "sub").mkdir()
    got = registry.provider("generic_metrics").evaluate(ProviderInput(gt, pred, most_recent=1, now=now))
    assert got == {
        "num_images_recent_ground_truth": 2.0,
        "num_images_recent_predicted": 4.0,
        "num_images_total_ground_truth": 5.0,
        "num_images_total_predicted": 5.0,
    }
    every = registry.provider("generic_metrics").evaluate(ProviderInput(gt, pred))
    assert every["num_images_recent_ground_truth"] == 5.0


# --- thresholds ---------------------------------------------------------------------------------


def test_violations_for_lower_and_upper_limits() -> None:
    thresholds = {
        "a": Threshold(10.0, "lower"),
        "b": Threshold(10.0, "upper"),
        "c": Threshold(10.0, "lower"),
        "d": Threshold(10.0, "upper"),
    }
    values = {"a": 9.5, "b": 10.5, "c": 10.0, "d": 10.0, "e": -1.0}
    found = violations(values, thresholds)
    assert [(v.metric, v.value, v.threshold.direction) for v in found] == [
        ("a", 9.5, "lower"),
        ("b", 10.5, "upper"),
    ]
    assert found[0].to_dict() == {"metric": "a", "value": 9.5, "limit": 10.0, "direction": "lower"}


def test_parse_thresholds_rejects_unknown_metric_and_bad_values() -> None:
    ok = parse_thresholds(SEGMENTATION, {"Dice": {"threshold": [30, "upper"]}})
    assert ok == {"Dice": Threshold(30.0, "upper")}
    merged = effective_thresholds(SEGMENTATION, ok)
    assert merged["Dice"] == Threshold(30.0, "upper")
    assert merged["IOU"] == SEGMENTATION.thresholds["IOU"]
    with pytest.raises(MlopsError) as err:
        parse_thresholds(SEGMENTATION, {"dice_score": {"threshold": [1, "lower"]}})
    assert "no metric 'dice_score'" in str(err.value)
    assert "precision_positive" in str(err.value) and "PixAcc_negative" in str(err.value)
    for bad in ({"threshold": [1, "below"]}, {"threshold": ["x", "lower"]}, {"threshold": [1]}, [1]):
        with pytest.raises(MlopsError, match="segmentation_metrics.thresholds.Dice"):
            parse_thresholds(SEGMENTATION, {"Dice": bad})


def test_instance_thresholds_are_checked_against_the_definition_resource() -> None:
    assert {DIRECTION_OF[LIMIT_TYPES[d]] for d in ("lower", "upper")} == {"lower", "upper"}
    definition = {
        "metadata": {"id": "seg"},
        "entity": {"metrics": [{"id": "dice", "name": "Dice"}, {"id": "iou", "name": "IOU"}]},
    }
    ok = check_instance_thresholds(definition, [{"metric_id": "dice", "type": "upper_limit", "value": 3}])
    assert ok == [{"metric_id": "dice", "type": "upper_limit", "value": 3.0}]
    assert isinstance(ok[0]["value"], float)
    with pytest.raises(
        MlopsError, match=r"monitor 'seg' has no metric id 'Dice'; its metrics are: Dice \(dice\)"
    ):
        check_instance_thresholds(definition, [{"metric_id": "Dice", "type": "lower_limit", "value": 1}])
    with pytest.raises(MlopsError, match="must be lower_limit or upper_limit, got 'lower'"):
        check_instance_thresholds(definition, [{"metric_id": "dice", "type": "lower", "value": 1}])
    for bad in (True, "1", float("nan"), None):
        with pytest.raises(MlopsError, match="threshold value for 'dice' must be a finite number"):
            check_instance_thresholds(
                definition, [{"metric_id": "dice", "type": "lower_limit", "value": bad}]
            )


def test_metric_ids_are_lower_case_names() -> None:
    assert metric_id("Dice_positive") == "dice_positive"
    assert metric_id("PixAcc") == "pixacc"
    ids = [metric_id(m) for m in SEGMENTATION.metric_names]
    assert len(set(ids)) == len(ids)


# --- registry -----------------------------------------------------------------------------------


def test_builtins_are_known(workspace) -> None:
    known = known_definitions(workspace)
    assert {"segmentation_metrics", "generic_metrics"} <= set(known)
    assert len(known["segmentation_metrics"].metric_names) == 18
    assert known["segmentation_metrics"].default_thresholds()["precision"] == {"threshold": [60.0, "lower"]}


def test_versioned_id_is_registered_and_stored(workspace, tmp_path: Path) -> None:
    defn = registry.register_definition(
        "segmentation_metrics_v22",
        "segmentation_metrics",
        thresholds={"Dice": {"threshold": [25.0, "lower"]}},
        workspace=workspace,
    )
    assert defn.provider == "segmentation_metrics"
    assert defn.thresholds["Dice"] == Threshold(25.0, "lower")
    assert defn.metric_names == SEGMENTATION.metric_names
    # stored: a fresh lookup (the config model's) sees it, in this workspace only
    assert "segmentation_metrics_v22" in known_definitions(workspace)
    assert "segmentation_metrics_v22" not in known_definitions(Workspace(tmp_path / "other"))
    assert registry.provider_for("segmentation_metrics_v22", workspace).name == "segmentation_metrics"
    registry.unregister_definition("segmentation_metrics_v22", workspace)
    assert "segmentation_metrics_v22" not in known_definitions(workspace)


def test_registration_errors(workspace) -> None:
    with pytest.raises(MlopsError, match="invalid monitor id"):
        registry.register_definition("Bad-Id", "segmentation_metrics", workspace=workspace)
    with pytest.raises(MlopsError, match="built in"):
        registry.register_definition("generic_metrics", "segmentation_metrics", workspace=workspace)
    with pytest.raises(NotFoundError, match="no metric provider 'nope'"):
        registry.register_definition("x_v1", "nope", workspace=workspace)
    with pytest.raises(MlopsError, match="no metric 'count'"):
        registry.register_definition(
            "g_v1", "generic_metrics", thresholds={"count": {"threshold": [1, "lower"]}}, workspace=workspace
        )
    with pytest.raises(NotFoundError, match="unknown monitor 'segmentation_metrics_v9'") as unknown:
        registry.definition("segmentation_metrics_v9", workspace)
    assert unknown.value.hint.action == "monitor.register"
    assert unknown.value.hint.args == {
        "monitor": "segmentation_metrics_v9",
        "provider": "segmentation_metrics",
    }


def test_reading_definitions_creates_no_workspace(tmp_path: Path) -> None:
    from mlops_widgets.workspace import Workspace

    ws = Workspace(tmp_path / "fresh")
    assert set(known_definitions(ws)) >= {"segmentation_metrics"}
    assert not ws.root.exists()


PLUGIN = """
from mlops_widgets.monitors import MetricProvider, MonitorDefinition, Threshold

def compute(inputs):
    return {"files": float(len(list(inputs.dir_gt.iterdir())))}

PROVIDER = MetricProvider(
    MonitorDefinition(id="plugin_metrics", name="Plugin", description="counts", provider="whatever",
                      thresholds={"files": Threshold(2.0, "lower")}),
    compute,
)
NOT_A_PROVIDER = 42
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed only through sys.path: module + dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "mlw_plugin_demo.py").write_text(PLUGIN)
    info = site / "mlw_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlw-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mlops_widgets.monitors]\n"
        "plugin_metrics = mlw_plugin_demo:PROVIDER\n"
        "broken_metrics = mlw_plugin_missing:PROVIDER\n"
        "odd_metrics = mlw_plugin_demo:NOT_A_PROVIDER\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("mlw_plugin_demo", None)


def test_entry_point_provider(plugin_site: Path, tmp_path: Path, workspace) -> None:
    known = known_definitions(workspace)
    assert "plugin_metrics" in known and "broken_metrics" not in known
    assert known["plugin_metrics"].provider == "plugin_metrics"
    prov = registry.provider_for("plugin_metrics", workspace)
    assert isinstance(prov, MetricProvider)
    n_files = float(len(list(plugin_site.iterdir())))
    assert prov.evaluate(ProviderInput(plugin_site, plugin_site)) == {"files": n_files}
    with pytest.raises(MlopsError, match="mlw_plugin_missing:PROVIDER.*failed to load"):
        registry.provider("broken_metrics")
    with pytest.raises(MlopsError, match="is a int, not a"):
        registry.provider("odd_metrics")
    # a versioned id can be backed by a third-party provider too
    registry.register_definition("plugin_metrics_v2", "plugin_metrics", workspace=workspace)
    assert known_definitions(workspace)["plugin_metrics_v2"].metric_names == ["files"]


def test_provider_must_publish_its_metrics(tmp_path: Path) -> None:
    defn = MonitorDefinition("m", "M", "", "m", {"a": Threshold(1.0, "lower")})
    bad = MetricProvider(defn, lambda inputs: {"b": 1.0})
    with pytest.raises(ProviderError, match=r"missing \['a'\], unexpected \['b'\]"):
        bad.evaluate(ProviderInput(tmp_path, tmp_path))


def test_config_model_sees_a_registration(workspace) -> None:
    from mlops_widgets.config import new_entry, new_monitor_settings, validate_entry

    entry = new_entry()
    entry["openscale_custom_metric_provider"] = {
        "segmentation_metrics_v22": new_monitor_settings("segmentation_metrics")
    }
    entry["openscale_custom_metric_provider"]["segmentation_metrics_v22"].update(
        dir_gt="gt", dir_pred="pred", volume_display_name="vol"
    )
    _, warnings = validate_entry(entry, definitions=known_definitions(workspace))
    assert any("segmentation_metrics_v22" in str(w) and "not known locally" in str(w) for w in warnings)
    registry.register_definition("segmentation_metrics_v22", "segmentation_metrics", workspace=workspace)
    _, warnings = validate_entry(entry, definitions=known_definitions(workspace))
    assert not [w for w in warnings if "segmentation_metrics_v22" in str(w)]
    _, warnings = validate_entry(entry)  # the config alone knows the built-in monitors only
    assert any("segmentation_metrics_v22" in str(w) for w in warnings)


def test_segmentation_counts_pairs_in_parallel_in_order_with_bounded_memory(
    mask_dirs: tuple[Path, Path],
) -> None:
    """Every core decodes, the results keep the pairs' order, and only a few pairs per worker are
    taken ahead of what was consumed (memory stays flat in the number of pairs)."""
    from mlops_widgets.monitors import segmentation

    gt, pred = mask_dirs
    names = sorted(n.name for n in gt.glob("*_Seg.png") if (pred / n.name).exists()) * 20
    pulled = []

    def pairs():
        for n in names:
            pulled.append(n)
            yield gt / n, pred / n

    serial = list(segmentation.pair_counts(((gt / n, pred / n) for n in names), workers=1))
    parallel = segmentation.pair_counts(pairs(), workers=3)
    for i, counts in enumerate(parallel, start=1):
        assert (counts == serial[i - 1]).all()
        assert len(pulled) <= i + 3 * segmentation._IN_FLIGHT
    assert len(pulled) == len(names) == len(serial)
    (pred / "img1_Seg.png").write_bytes(b"not a png")  # an error still stops the whole evaluation
    with pytest.raises(ProviderError, match="cannot read image"):
        list(segmentation.pair_counts(((gt / n, pred / n) for n in names), workers=3))
