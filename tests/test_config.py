"""The config: the shipped example loads, defaults apply, and every error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dupwatch import config as configuration
from dupwatch.config import Config
from dupwatch.errors import ConfigError, ExitCode
from dupwatch.methods.registry import METHODS
from tests.conftest import run

EXAMPLE = Path(__file__).parent.parent / "config.example.yaml"


def test_example_config_loads_and_equals_the_defaults() -> None:
    assert configuration.load_file(EXAMPLE) == Config()


def test_example_config_runs_a_scan(photos: Path, cache: Path) -> None:
    result = run("scan", photos, "--config", EXAMPLE, "--cache", cache, "--json")
    assert result.code == ExitCode.OK
    assert result.events("summary")[0]["indexed"] == 8


@pytest.mark.parametrize(("yaml", "key", "problem"), [
    ("candidates:\n  max_distance: 65\n", "candidates.max_distance", "less than or equal to 64"),
    ("confirm:\n  method: sift\n", "confirm.method", "unknown method 'sift'; known: euclidean"),
    ("confirm:\n  threshold: 1.5\n", "confirm.threshold", "less than or equal to 1"),
    ("scan:\n  extensions: [.jpg, 3]\n", "scan.extensions[1]", "string"),
    ("scan:\n  workerz: 2\n", "scan.workerz", "unknown key"),
    ("candidates:\n  hash: md5\n", "candidates.hash", "'hash', 'phash', 'dhash' or 'whash'"),
    ("cache: [1, 2]\n", "cache", "valid dictionary"),
    ("- a list\n", "(top level)", "mapping"),
    ("confirm: {method: [\n", "(file)", "not valid YAML"),
    ("preset: lax\n", "preset", "'strict', 'normal' or 'loose'"),
])
def test_bad_config_names_the_key(tmp_path: Path, yaml: str, key: str, problem: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError) as info:
        configuration.load_file(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(path) in str(info.value)


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, photos: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("confirm:\n  threshold: high\n")
    result = run("scan", photos, "--config", path)
    assert result.code == ExitCode.USAGE
    [line] = result.err.strip().splitlines()
    assert line.startswith("dupwatch: ") and "confirm.threshold:" in line


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "xdg-config" / "dupwatch" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("candidates:\n  max_distance: 5\n")
    assert configuration.load(None).candidates.max_distance == 5
    env = tmp_path / "env.yaml"
    env.write_text("candidates:\n  max_distance: 6\n")
    monkeypatch.setenv("DUPWATCH_CONFIG", str(env))
    assert configuration.load(None).candidates.max_distance == 6
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("candidates:\n  max_distance: 7\n")
    assert configuration.load(explicit).candidates.max_distance == 7


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        configuration.load(tmp_path / "nope.yaml")


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError, match="frozen"):
        config.confirm.method = "ssim"  # type: ignore[misc]


def test_threshold_defaults_to_the_methods(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("confirm:\n  method: ssim\n")
    assert configuration.load_file(path).confirm.resolved_threshold() == 0.75


@pytest.mark.parametrize(("preset", "cosine", "ssim", "max_distance", "geometry", "floor"), [
    ("strict", 0.97, 0.76, 12, 0.67, 0.85),
    ("normal", 0.93, 0.75, 20, 0.5, 0.85),
    ("loose", 0.92, 0.45, 24, 0.5, 0.80),
])
def test_a_preset_sets_what_the_config_leaves_unset(tmp_path: Path, preset: str, cosine: float, ssim: float,
                                                    max_distance: int, geometry: float, floor: float) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"preset: {preset}\n")
    config = configuration.load_file(path)
    assert config.confirm.resolved_threshold() == cosine
    assert (config.candidates.max_distance, config.geometry.threshold) == (max_distance, geometry)
    assert config.geometry.verify_from["cosine"] == floor
    path.write_text(f"preset: {preset}\nconfirm:\n  method: ssim\n")
    assert configuration.load_file(path).confirm.resolved_threshold() == ssim
    # Keys the config sets itself win over the preset.
    path.write_text(f"preset: {preset}\nconfirm:\n  threshold: 0.95\ncandidates:\n  max_distance: 9\n")
    mine = configuration.load_file(path)
    assert (mine.confirm.resolved_threshold(), mine.candidates.max_distance) == (0.95, 9)


def test_presets_order_every_threshold() -> None:
    strict, normal, loose = (Config(preset=p) for p in ("strict", "normal", "loose"))
    assert strict.robust.threshold >= normal.robust.threshold > loose.robust.threshold
    for name, method in METHODS.items():
        thresholds = [c.threshold(method()) for c in (strict, normal, loose)]
        assert thresholds == sorted(thresholds, reverse=True), name


def test_compare_judges_by_the_presets_threshold(tmp_path: Path) -> None:
    from dupwatch.bench.variants import HARD_TRANSFORMS, _border_crop
    from tests.conftest import SAMPLES, open_rgb

    tilted = tmp_path / "camera tilted.jpg"  # cosine 0.96 with its original
    tilted.write_bytes(HARD_TRANSFORMS["perspective"](open_rgb(SAMPLES / "camera.png"))[1])
    cropped = tmp_path / "chelsea cropped.jpg"  # cosine 0.925: between loose and normal
    cropped.write_bytes(_border_crop(0.121)(open_rgb(SAMPLES / "chelsea.png"))[1])
    verdicts = {}
    for preset in ("strict", "normal", "loose"):
        config = tmp_path / f"{preset}.yaml"
        config.write_text(f"preset: {preset}\n")
        for copy, original in ((tilted, "camera.png"), (cropped, "chelsea.png")):
            result = run("compare", copy, SAMPLES / original, "--method", "cosine", "--json",
                         "--config", config)
            cosine = result.events("compare")[0]["scores"]["cosine"]
            verdicts[preset, copy.name] = cosine["duplicate"]
            assert cosine["threshold"] == Config(preset=preset).confirm.resolved_threshold()
    assert verdicts == {("strict", tilted.name): False, ("normal", tilted.name): True,
                        ("loose", tilted.name): True, ("strict", cropped.name): False,
                        ("normal", cropped.name): False, ("loose", cropped.name): True}


def test_aliases_a_config_really_uses_still_load(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("watch:\n  paths: &library [/photos, /more]\n  polling: *library\n")
    config = configuration.load_file(path)
    assert config.watch.polling == config.watch.paths == (Path("/photos"), Path("/more"))


def test_a_long_bad_key_or_value_is_quoted_short(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("scan:\n  ? " + "k" * 5000 + "\n  : 1\n")
    with pytest.raises(ConfigError) as info:
        configuration.load_file(path)
    assert info.value.key == "scan." + "k" * configuration.EXCERPT + "…"
    path.write_text("scan:\n  extensions: [" + "x/" * 5000 + "]\n")
    with pytest.raises(ConfigError) as info:
        configuration.load_file(path)
    assert info.value.key == "scan.extensions" and len(str(info.value)) < 300 + len(str(path))


def test_a_config_folder_this_user_may_not_enter_is_one_line_not_a_traceback() -> None:
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to run as another user")
    shared = Path(tempfile.mkdtemp(prefix="dupwatch-config-"))
    try:
        shared.chmod(0o755)
        folder = shared / "config" / "dupwatch"
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("preset: strict\n")
        folder.chmod(0o700)  # root's: the other user may not even look inside
        env = {**os.environ, "XDG_CONFIG_HOME": str(shared / "config"), "XDG_CACHE_HOME": str(shared)}
        env.pop("DUPWATCH_CONFIG", None)
        done = subprocess.run([setpriv, "--reuid=4326", "--regid=4326", "--clear-groups", sys.executable,
                               "-m", "dupwatch", "check"], capture_output=True, text=True, env=env,
                              cwd=shared, timeout=120)
        assert done.returncode == ExitCode.USAGE, done.stderr
        assert "Traceback" not in done.stderr
        assert f"{folder / 'config.yaml'}: (file): cannot read: Permission denied" in done.stderr
    finally:
        shutil.rmtree(shared)
