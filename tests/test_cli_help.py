"""The command line explains itself: help for every argument, words people read, a true progress bar."""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from PIL import Image

from dupwatch.cli import _config, _parser
from dupwatch.config import parse
from dupwatch.errors import ExitCode
from tests.conftest import SAMPLES, open_rgb, run


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_argument_and_option_has_help() -> None:
    parser = _parser()
    missing = [f"dupwatch {a.dest}" for a in parser._actions if not (a.help or "").strip()]
    for name, command in _commands(parser).items():
        missing += [f"dupwatch {name} {'/'.join(a.option_strings) or a.dest}"
                    for a in command._actions if not (a.help or "").strip()]
    assert not missing


def test_robust_and_preset_switches_override_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("preset: strict\nrobust: {enabled: false}\ngeometry: {threshold: 0.6}\n")
    for command in ("scan", "watch", "query"):
        args = _parser().parse_args([command, "x", "--config", str(config), "--robust", "--preset", "loose"])
        switched = _config(args)
        assert switched.robust.enabled is True
        assert switched.preset == "loose"
        # The loose preset's own values, except the key the file sets itself.
        loose = parse({"preset": "loose", "geometry": {"threshold": 0.6}})
        assert switched.candidates.max_distance == loose.candidates.max_distance == 24
        assert switched.confirm.resolved_threshold() == loose.confirm.resolved_threshold()
        assert switched.geometry.threshold == 0.6
        plain = _config(_parser().parse_args([command, "x", "--config", str(config)]))
        assert (plain.robust.enabled, plain.preset, plain.candidates.max_distance) == (False, "strict", 12)
    bad = subprocess.run([sys.executable, "-m", "dupwatch", "scan", str(tmp_path), "--preset", "lax"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == ExitCode.USAGE and "strict" in bad.stderr


def test_one_duplicate_is_singular(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(SAMPLES / "chelsea.png", folder / "a.png")
    shutil.copy(SAMPLES / "chelsea.png", folder / "b.png")
    result = run("scan", folder, "--cache", tmp_path / "c.db")
    summary = result.err.strip().splitlines()[-1]
    assert "; 1 duplicate (1 exact, 0 near)" in summary, summary
    assert summary.startswith("dupwatch: 2 files in ")
    (folder / "b.png").unlink()
    again = run("scan", folder, "--cache", tmp_path / "c.db").err.strip().splitlines()[-1]
    assert again.startswith("dupwatch: 1 file in ") and again.endswith("; 1 deleted file forgotten"), again
    checked = run("check", "--cache", tmp_path / "c.db")
    assert ": schema " in checked.out and " 1 file, 1 notice\n" in checked.out, checked.out


def test_turned_copies_are_said_in_words(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = open_rgb(SAMPLES / "chelsea.png")
    photo.save(folder / "a.jpg", quality=95)
    photo.transpose(Image.Transpose.TRANSPOSE).save(folder / "b.jpg", quality=95)
    text = run("scan", folder, "--cache", tmp_path / "text.db").out
    assert "turned 90° clockwise and mirrored" in text and "transpose" not in text, text
    [found] = run("scan", folder, "--cache", tmp_path / "json.db", "--json").events("duplicate")
    assert found["transform"] == "transpose"  # the JSON field is an API: its names stay


def _terminal_run(*args: str | Path) -> tuple[int, str]:
    """`dupwatch ARGS` with its stderr on a real terminal (a pty), as a person runs it."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    env = {**os.environ, "TQDM_MININTERVAL": "0"}  # every step drawn
    proc = subprocess.Popen([sys.executable, "-m", "dupwatch", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal (EIO)
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), seen.decode(errors="replace")


def test_progress_bar_total_stays_right_when_files_are_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
    for name in names:  # each an original and its copy: the copy yields Indexed, then Duplicate
        shutil.copy(SAMPLES / name, folder / name)
        shutil.copy(SAMPLES / name, folder / f"copy-{name}")
    code, terminal = _terminal_run("scan", folder, "--cache", tmp_path / "c.db", "--workers", "1")
    assert code == ExitCode.OK, terminal
    assert "4 duplicates" in terminal
    steps = re.findall(r"(\d+)/(\d+) \[", terminal)
    assert steps, terminal
    assert {int(total) for _, total in steps} == {8}, terminal
    assert max(int(n) for n, _ in steps) == 8
    assert not re.search(r"\d+file \[", terminal), terminal  # a count with its total gone


def test_the_review_server_logs_no_task_queue_depth(photos: Path, cache: Path, tmp_path: Path) -> None:
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from tests.review_server import ReviewProcess

    run("scan", photos, "--cache", cache)
    server = ReviewProcess(tmp_path, "--cache", cache)

    def fetch(page: str) -> int:
        with urllib.request.urlopen(server.url + page, timeout=60) as response:  # noqa: S310
            response.read()
            return int(response.status)

    try:
        # A phone opening the list asks for a page's worth of thumbnails at once: more requests
        # than the server has threads.
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(fetch, [""] * 64))
    finally:
        server.kill()
    assert statuses == [200] * 64
    assert "Task queue depth" not in server.stderr.read_text()


def _without(tmp_path: Path, *modules: str) -> Path:
    """A folder for PYTHONPATH whose sitecustomize makes `modules` not installed, in every
    process of the run (the scan's workers too)."""
    folder = tmp_path / "without"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    return folder


def _dupwatch(tmp_path: Path, package_root: Path, cwd: Path, *args: str | Path) -> str:
    blocked = _without(tmp_path, "torch", "cv2", "rawpy")
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{package_root}"}
    proc = subprocess.run([sys.executable, "-m", "dupwatch", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)
    return proc.stderr


def test_a_missing_extra_is_named_in_the_words_of_the_install(tmp_path: Path) -> None:
    import dupwatch

    checkout = Path(dupwatch.__file__).resolve().parent.parent
    pair = (SAMPLES / "chelsea.png", SAMPLES / "coffee.png")
    here = _dupwatch(tmp_path, checkout, checkout, "compare", *pair)
    assert here.count("pip install") == 2, here
    assert "(pip install '.[cnn]')" in here and "(pip install '.[geometry]')" in here, here
    elsewhere = _dupwatch(tmp_path, checkout, tmp_path, "compare", *pair)
    assert f"(pip install '{checkout}[cnn]')" in elsewhere, elsewhere
    # A copy of the package with no source tree around it, as a wheel from PyPI installs it.
    site = tmp_path / "site"
    shutil.copytree(checkout / "dupwatch", site / "dupwatch", ignore=shutil.ignore_patterns("__pycache__"))
    wheel = _dupwatch(tmp_path, site, tmp_path, "compare", *pair)
    assert "(pip install 'dupwatch[cnn]')" in wheel and "(pip install 'dupwatch[geometry]')" in wheel, wheel


def test_a_missing_package_is_named_once_per_run(tmp_path: Path) -> None:
    import dupwatch

    checkout = Path(dupwatch.__file__).resolve().parent.parent
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("IMG_0001.CR2", "IMG_0002.CR2", "IMG_0003.NEF"):
        (folder / name).write_bytes(b"II*\x00 a camera's raw file " * 100)
    err = _dupwatch(tmp_path, checkout, tmp_path, "scan", folder, "--cache", tmp_path / "c.db")
    skipped = [line for line in err.splitlines() if line.startswith("dupwatch: skipped ")]
    assert len(skipped) == 3, err
    assert skipped[0].endswith("camera raw files need rawpy: pip install rawpy")
    assert [line.endswith("camera raw files need rawpy") for line in skipped[1:]] == [True, True], err
