"""Shared fixtures: real photographs (scikit-image ships them in its wheel) and a CLI runner."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import skimage
from PIL import Image

from dupwatch.cli import main
from dupwatch.config import CacheConfig, Config
from dupwatch.errors import ExitCode
from dupwatch.pipeline import Pipeline
from dupwatch.store import open_store

SAMPLES = Path(skimage.__file__).parent / "data"
# Real colour photographs, distinct from each other (scikit-image's sample data, see its README).
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "camera.png")


# Take a cache back to what an earlier release left (for tests of the migrations): from schema 11
# to 10 (no capture stamp), from 10 to 9 (no own pixels), from 9 to 8 (no change log), from 7 to
# 6 (no groups), and from 6 to 5 (fingerprints in one WITHOUT ROWID table).
BEFORE_SCHEMA_11 = """
    ALTER TABLE files DROP COLUMN taken;
"""
BEFORE_SCHEMA_10 = BEFORE_SCHEMA_11 + """
    ALTER TABLE files DROP COLUMN pixels;
"""
BEFORE_SCHEMA_9 = BEFORE_SCHEMA_10 + """
    DROP TRIGGER changes_hash_new;
    DROP TRIGGER changes_hash_set;
    DROP TRIGGER changes_hash_gone;
    DROP TRIGGER changes_grid_new;
    DROP TRIGGER changes_grid_set;
    DROP TABLE changes;
"""
BEFORE_SCHEMA_7 = BEFORE_SCHEMA_9 + """
    DROP INDEX files_group;
    DROP INDEX notices_hashes;
    DROP INDEX notices_group;
    ALTER TABLE files DROP COLUMN grp;
    ALTER TABLE files DROP COLUMN format;
    ALTER TABLE files DROP COLUMN meta;
    ALTER TABLE notices DROP COLUMN grp;
    ALTER TABLE notices DROP COLUMN keep;
    DROP TABLE groups;
"""
UNDO_STEP_6 = """;
    CREATE TABLE fingerprints (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        method  TEXT    NOT NULL,
        data    BLOB    NOT NULL,
        PRIMARY KEY (file_id, method)
    ) WITHOUT ROWID;
    CREATE INDEX fingerprints_method ON fingerprints (method);
    INSERT INTO fingerprints SELECT file_id, method, data FROM hashes
        UNION ALL SELECT file_id, method, data FROM grids;
    DROP TABLE hashes;
    DROP TABLE grids;
"""
BEFORE_SCHEMA_6 = BEFORE_SCHEMA_7 + UNDO_STEP_6


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the sample photographs, as a user's folder would hold them."""
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(SAMPLES / name, folder / name)
    return folder


@pytest.fixture
def photos(tmp_path: Path, photo_dir: Path) -> Path:
    """A fresh, writable copy of the photo folder for one test."""
    folder = tmp_path / "photos"
    shutil.copytree(photo_dir, folder)
    return folder


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.json() if e["event"] == kind]


def run(*args: str | Path) -> Result:
    """Run the real CLI in this process (fast; one worker so no process pool)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


def scan_found(folder: Path, tmp_path: Path, config: str) -> dict[str, str]:
    """`folder` scanned with `config` into a fresh cache: which file each duplicate names as its
    original, by file name."""
    path = tmp_path / "config.yaml"
    path.write_text(config)
    result = run("scan", folder, "--json", "--cache", tmp_path / "c.db", "--config", path)
    assert result.code == ExitCode.OK, result.err
    return {Path(d["path"]).name: Path(d["match"]).name for d in result.events("duplicate")}


def run_process(*args: str | Path, env: dict[str, str] | None = None, **kw: Any) -> Result:
    """Run `python -m dupwatch` as a user would, in its own process."""
    proc = subprocess.run([sys.executable, "-m", "dupwatch", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300, check=False, **kw)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "index.sqlite3"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never read the developer's own config or write to their cache."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))  # the notice log, sidecars
    monkeypatch.delenv("DUPWATCH_CONFIG", raising=False)
    yield


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """The default config's pipeline on a real SQLite cache of its own."""
    store = open_store(CacheConfig(path=tmp_path / "cache.db"))
    pipeline = Pipeline(Config(), store)
    yield pipeline
    pipeline.close()
    store.close()
