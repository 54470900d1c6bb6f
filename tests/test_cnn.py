"""The CNN methods with the real pretrained EfficientNet-Lite0, and robust mode, on real photos."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupwatch.errors import ConfigError, ExitCode
from dupwatch.methods.registry import get_method
from tests.conftest import PHOTOS, SAMPLES, open_rgb, run

pytest.importorskip("torch", reason="the cnn extra is installed by `make test`")


def _cnn_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cnn.yaml"
    path.write_text("confirm:\n  method: cnn\n" + extra)
    return path


def test_import_and_hash_mode_do_not_load_torch(photos: Path, tmp_path: Path) -> None:
    code = ("import sys; from dupwatch.cli import main; "
            f"main(['scan', {str(photos)!r}, '--cache', {str(tmp_path / 'c.db')!r}]); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_near_duplicate_scores_above_different_photos() -> None:
    cnn, euclid = get_method("cnn"), get_method("cnn-euclidean")
    astronaut = open_rgb(SAMPLES / "astronaut.png")
    smaller = astronaut.resize((256, 256), Image.Resampling.LANCZOS)
    chelsea, coffee = open_rgb(SAMPLES / "chelsea.png"), open_rgb(SAMPLES / "coffee.png")
    a, b, c, d = cnn.fingerprint_batch([cnn.prepare(im) for im in (astronaut, smaller, chelsea, coffee)])
    assert a.dtype == np.float16 and a.shape == (1280,)
    assert abs(float(np.linalg.norm(a.astype(np.float32))) - 1.0) < 1e-2
    same, different = cnn.compare(a, b), max(cnn.compare(a, c), cnn.compare(a, d), cnn.compare(c, d))
    assert same >= cnn.default_threshold > different
    # The Euclidean score ranks pairs the same way, with its own threshold.
    assert euclid.compare(a, b) >= euclid.default_threshold > euclid.compare(a, c)


def test_batch_and_single_embeddings_agree() -> None:
    cnn = get_method("cnn")
    images = [open_rgb(SAMPLES / n) for n in ("rocket.jpg", "coffee.png", "chelsea.png")]
    batch = cnn.fingerprint_batch([cnn.prepare(im) for im in images])
    single = cnn.fingerprint(images[1])
    assert cnn.compare(batch[1], single) > 0.999


def test_folded_model_embeds_as_efficientnet_pytorch_does() -> None:
    import torch

    from dupwatch.methods import efficientnet

    cnn = get_method("cnn")
    names = ("rocket.jpg", "coffee.png", "chelsea.png")
    images = np.ascontiguousarray(np.stack([cnn.prepare(open_rgb(SAMPLES / n)) for n in names])[..., :3])
    folded, plain = efficientnet.load("lite0", None), efficientnet.build("lite0", None)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    assert float(np.abs(folded.embed(images) - plain.embed(images)).max()) < 1e-4


def test_scan_with_cnn_confirm_stores_embeddings(photos: Path, cache: Path, tmp_path: Path) -> None:
    small = open_rgb(photos / "chelsea.png")
    small.resize((small.width // 2, small.height // 2)).save(photos / "zz-chelsea-small.jpg", quality=70)
    config = _cnn_config(tmp_path)
    first = run("scan", photos, "--json", "--cache", cache, "--config", config)
    assert first.code == ExitCode.OK, first.err
    [dup] = first.events("duplicate")
    assert dup["method"] == "cnn" and dup["match"] == str(photos / "chelsea.png")
    with sqlite3.connect(cache) as db:
        sizes = {len(r[0]) for r in db.execute("SELECT data FROM grids WHERE method LIKE 'cnn/%'")}
    assert sizes == {1280 * 2}  # float16
    again = run("scan", photos, "--json", "--cache", cache, "--config", config)
    assert again.events("summary")[0]["unchanged"] == 9  # not decoded, so not embedded again


def test_compare_all_shows_both_cnn_methods() -> None:
    result = run("compare", SAMPLES / "motorcycle_left.png", SAMPLES / "motorcycle_right.png", "--json")
    import json

    scores = json.loads(result.out)["scores"]
    assert {"cnn", "cnn-euclidean", "cosine", "ssim", "euclidean", "hash"} <= set(scores)


def test_missing_weights_say_where(tmp_path: Path) -> None:
    from dupwatch.methods import efficientnet

    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match=f"weights file not found: {missing}"):
        efficientnet.load("lite0", str(missing))
    config = _cnn_config(tmp_path, f"cnn:\n  weights: {missing}\n")
    result = run("compare", SAMPLES / "coffee.png", SAMPLES / "chelsea.png", "--method", "cnn",
                 "--config", config)
    assert result.code == ExitCode.USAGE and "cnn.weights" in result.err and str(missing) in result.err


@pytest.mark.parametrize("index", ["auto", "codes"])
def test_robust_mode_finds_straightened_cropped_and_turned_copies(photos: Path, tmp_path: Path,
                                                                  index: str) -> None:
    from dupwatch.bench.variants import HARD_TRANSFORMS, TRANSFORMS, _centre_crop

    edits = {"zz-chelsea-straightened.jpg": ("chelsea.png", HARD_TRANSFORMS["straighten10"]),
             "zz-coffee-cropped.jpg": ("coffee.png", _centre_crop(0.7)),
             "zz-rocket-turned.jpg": ("rocket.jpg", TRANSFORMS["rot90"])}
    for name, (source, edit) in edits.items():
        (photos / name).write_bytes(edit(open_rgb(photos / source))[1])
    hash_only = tmp_path / "hash.yaml"
    hash_only.write_text("candidates:\n  dihedral: false\n  max_distance: 12\ngeometry:\n  enabled: false\n")
    plain = run("scan", photos, "--json", "--cache", tmp_path / "plain.db", "--config", hash_only)
    assert plain.events("duplicate") == []  # the hash alone misses all three
    config = tmp_path / "robust.yaml"
    config.write_text(f"robust:\n  enabled: true\n  index: {index}\n")
    robust = run("scan", photos, "--json", "--cache", tmp_path / "robust.db", "--config", config)
    assert robust.code == ExitCode.OK, robust.err
    found = {Path(d["path"]).name: d for d in robust.events("duplicate")}
    assert {name: Path(d["match"]).name for name, d in found.items()} == {
        name: source for name, (source, _) in edits.items()}
    assert found["zz-chelsea-straightened.jpg"]["method"] == "cnn"
    assert found["zz-coffee-cropped.jpg"]["method"] in ("cnn", "geometry")  # the hash finds it at 20 bits
    assert found["zz-rocket-turned.jpg"]["transform"] == "rotate-90-ccw"


def test_robust_query_ranks_the_original_of_a_crop_first(photos: Path, tmp_path: Path) -> None:
    from dupwatch.bench.variants import _centre_crop

    config = tmp_path / "robust.yaml"
    config.write_text("robust:\n  enabled: true\n")
    cache = tmp_path / "robust.db"
    run("scan", photos, "--cache", cache, "--config", config)
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(_centre_crop(0.6)(open_rgb(photos / "chelsea.png"))[1])
    result = run("query", probe, "--json", "--cache", cache, "--config", config)
    ranked = result.json()
    assert ranked[0]["path"] == str(photos / "chelsea.png")


def test_robust_mode_matches_each_turned_copy_to_its_own_original(photos: Path, tmp_path: Path) -> None:
    """Photos turned onto black canvases look alike to a CNN; each must still find its original."""
    from tests.test_canvas import turned_copies_found

    found = turned_copies_found(photos, tmp_path, [25] * len(PHOTOS), "robust:\n  enabled: true\n")
    assert found == {f"zz-{Path(name).stem}-turned.jpg": name for name in PHOTOS}


def test_robust_mode_keeps_its_usearch_graph_beside_the_cache(photos: Path, tmp_path: Path) -> None:
    pytest.importorskip("usearch")
    config = tmp_path / "robust.yaml"
    config.write_text("robust:\n  enabled: true\n  index: usearch\n")
    cache = tmp_path / "c.db"
    graph = tmp_path / "c.db.vectors.usearch"
    first = run("scan", photos, "--cache", cache, "--config", config)
    assert first.code == ExitCode.OK, first.err
    assert graph.exists()
    written = graph.stat().st_mtime_ns
    assert run("scan", photos, "--cache", cache, "--config", config).code == ExitCode.OK
    assert graph.stat().st_mtime_ns == written  # nothing changed: not saved again

    # A crop lands and an original goes: the saved graph is brought up to date, not trusted.
    from dupwatch.bench.variants import _centre_crop
    (photos / "zz-coffee-cropped.jpg").write_bytes(_centre_crop(0.7)(open_rgb(photos / "coffee.png"))[1])
    (photos / "rocket.jpg").unlink()
    result = run("scan", photos, "--json", "--cache", cache, "--config", config, "-v")
    assert result.code == ExitCode.OK, result.err
    assert "brought up to date" in result.err
    found = {Path(d["path"]).name: Path(d["match"]).name for d in result.events("duplicate")}
    assert found == {"zz-coffee-cropped.jpg": "coffee.png"}
    assert graph.stat().st_mtime_ns != written
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(_centre_crop(0.8)(open_rgb(SAMPLES / "rocket.jpg"))[1])
    ranked = run("query", probe, "--json", "--cache", cache, "--config", config).json()
    assert all(Path(r["path"]).name != "rocket.jpg" for r in ranked)  # gone from the graph too
