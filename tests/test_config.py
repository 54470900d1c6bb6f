"""The config: the shipped example loads, defaults apply, and every error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dupwatch import config as configuration
from dupwatch.config import Config
from dupwatch.errors import ConfigError, ExitCode
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
