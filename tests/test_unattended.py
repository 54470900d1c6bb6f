"""Issue 14: what other people and programs leave in a watched folder never stops dupwatch.

Real files on a real filesystem and real processes: each test drops something hostile where
dupwatch looks, and checks that it is skipped with one line naming it while real duplicates are
still found, and that nothing dropped is ever changed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dupwatch.errors import ExitCode
from tests.conftest import run, run_process

DEPTH = 1100  # deeper than Python's default recursion limit of 1000


def deep_folder(top: Path, depth: int) -> Path:
    """`top/d/d/.../d`, `depth` folders down; made with relative steps, as a shell loop would."""
    here = os.getcwd()
    top.mkdir(parents=True, exist_ok=True)
    os.chdir(top)
    try:
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
        return Path(os.getcwd())
    finally:
        os.chdir(here)


def remove_deep(top: Path) -> None:
    """What `deep_folder` made, removed bottom up (shutil.rmtree recurses, and would fail)."""
    folders = [str(top)]
    while True:
        below = [e.path for e in os.scandir(folders[-1]) if e.is_dir(follow_symlinks=False)]
        if not below:
            break
        folders.append(below[0])
    for folder in reversed(folders):
        for entry in os.scandir(folder):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(folder)


def test_a_scan_walks_a_tree_deeper_than_the_recursion_limit(photos: Path, cache: Path) -> None:
    bottom = deep_folder(photos / "deep", DEPTH)
    shutil.copy(photos / "chelsea.png", bottom / "chelsea copy.png")
    try:
        result = run("scan", "--cache", cache, photos)
    finally:
        remove_deep(photos / "deep")
    assert result.code == ExitCode.OK, result.err
    assert f"{bottom / 'chelsea copy.png'}\n    duplicates {photos / 'chelsea.png'}" in result.out
    assert "RecursionError" not in result.err


def test_a_fifo_named_like_a_photo_is_skipped_with_a_reason(photos: Path, cache: Path) -> None:
    os.mkfifo(photos / "y.jpg")
    result = run_process("scan", "--cache", cache, photos)
    assert result.code == ExitCode.SKIPPED, result.err
    assert f"{photos / 'y.jpg'}: a FIFO, not a photo file" in result.err
