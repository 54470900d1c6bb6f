"""`dupwatch scan` end to end: real photos, real files, a real SQLite cache."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from dupwatch.errors import ExitCode
from tests.conftest import open_rgb, run, run_process


def _variant(src: Path, target: Path, edit: str) -> Path:
    image = open_rgb(src)
    w, h = image.size
    if edit == "resize":
        image = image.resize((w // 3, h // 3), Image.Resampling.LANCZOS)
    elif edit == "bright":
        image = ImageEnhance.Brightness(image).enhance(1.25)
    elif edit == "crop":
        image = image.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, quality=85)
    return target


def test_finds_exact_and_near_duplicates(photos: Path, cache: Path) -> None:
    incoming = photos / "zz-incoming"  # sorted after the originals: indexed later
    incoming.mkdir()
    shutil.copy(photos / "coffee.png", incoming / "coffee copy.png")
    _variant(photos / "astronaut.png", incoming / "astronaut-small.jpg", "resize")
    _variant(photos / "chelsea.png", incoming / "chelsea-bright.jpg", "bright")
    _variant(photos / "rocket.jpg", incoming / "rocket-crop.jpg", "crop")

    result = run("scan", photos, "--json", "--cache", cache)

    assert result.code == ExitCode.OK, result.err
    found = {Path(d["path"]).name: d for d in result.events("duplicate")}
    assert set(found) == {"coffee copy.png", "astronaut-small.jpg", "chelsea-bright.jpg", "rocket-crop.jpg"}
    assert found["coffee copy.png"]["kind"] == "exact"
    assert found["coffee copy.png"]["match"] == str(photos / "coffee.png")
    assert found["astronaut-small.jpg"]["match"] == str(photos / "astronaut.png")
    assert found["chelsea-bright.jpg"]["match"] == str(photos / "chelsea.png")
    assert found["rocket-crop.jpg"]["match"] == str(photos / "rocket.jpg")
    for d in found.values():
        assert set(d) == {"event", "path", "match", "kind", "method", "score", "distance", "group", "keep"}
        assert os.path.isabs(d["path"]) and os.path.isabs(d["match"])
        assert 0.0 <= d["score"] <= 1.0
    near = found["astronaut-small.jpg"]
    assert near["kind"] == "near" and near["method"] == "cosine" and near["score"] >= 0.93
    summary = result.events("summary")[0]
    assert summary["indexed"] == 12 and summary["duplicates"] == 4


def test_distinct_photos_are_not_duplicates(photos: Path, cache: Path) -> None:
    result = run("scan", photos, "--json", "--cache", cache)
    assert result.code == ExitCode.OK
    assert result.events("duplicate") == []


def test_rescan_reads_nothing_unchanged_and_reports_nothing_twice(photos: Path, cache: Path) -> None:
    shutil.copy(photos / "coffee.png", photos / "coffee2.png")
    first = run("scan", photos, "--json", "--cache", cache)
    assert len(first.events("duplicate")) == 1
    second = run("scan", photos, "--json", "--cache", cache)
    summary = second.events("summary")[0]
    assert summary["unchanged"] == 9 and summary["indexed"] == 0
    assert second.events("duplicate") == []


def test_changed_file_is_indexed_again(photos: Path, cache: Path) -> None:
    run("scan", photos, "--cache", cache)
    # Replace chelsea with a copy of astronaut: same path, new content.
    shutil.copy(photos / "astronaut.png", photos / "chelsea.png")
    result = run("scan", photos, "--json", "--cache", cache)
    assert result.events("summary")[0]["indexed"] == 1
    [dup] = result.events("duplicate")
    assert dup["path"] == str(photos / "chelsea.png") and dup["match"] == str(photos / "astronaut.png")


def test_deleted_files_leave_the_cache(photos: Path, cache: Path) -> None:
    run("scan", photos, "--cache", cache)
    (photos / "coffee.png").unlink()
    result = run("scan", photos, "--json", "--cache", cache)
    assert result.events("summary")[0]["forgotten"] == 1
    with sqlite3.connect(cache) as db:
        paths = {r[0] for r in db.execute("SELECT path FROM files")}
    assert str(photos / "coffee.png") not in paths and len(paths) == 7


def test_files_are_indexed_in_a_deterministic_order(photos: Path, tmp_path: Path) -> None:
    for n in range(3):
        shutil.copy(photos / "coffee.png", photos / f"copy{n}.png")
    a = run("scan", photos, "--json", "--cache", tmp_path / "a.db")
    b = run("scan", photos, "--json", "--workers", "2", "--cache", tmp_path / "b.db")
    pairs = [(d["path"], d["match"]) for d in a.events("duplicate")]
    assert pairs == [(d["path"], d["match"]) for d in b.events("duplicate")]
    # Names sort "coffee.png" < "copy0.png": the original is the one every copy points to.
    assert pairs == [(str(photos / f"copy{n}.png"), str(photos / "coffee.png")) for n in range(3)]


def _bad_files(folder: Path) -> dict[str, str]:
    """Real broken files, each with the reason the scan must give."""
    good = (folder / "astronaut.png").read_bytes()
    jpeg = (folder / "rocket.jpg").read_bytes()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "notes.jpg").write_text("shopping list: milk, eggs\n" * 50)
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    from tests.test_decode import huge_png

    (folder / "huge.png").write_bytes(huge_png(40_000, 40_000))
    (folder / "half.png").write_bytes(good[: len(good) // 2])
    return {"empty.jpg": "empty file", "truncated.jpg": "corrupt or truncated",
            "notes.jpg": "a text file, not a photo", "dot.png": "too small", "huge.png": "too large",
            "half.png": "corrupt or truncated"}


def test_bad_files_are_skipped_with_a_reason_and_the_scan_goes_on(photos: Path, cache: Path) -> None:
    expected = _bad_files(photos)
    result = run("scan", photos, "--json", "--cache", cache)
    assert result.code == ExitCode.SKIPPED
    skipped = {Path(e["path"]).name: e["reason"] for e in result.events("skipped")}
    assert set(skipped) == set(expected)
    for name, reason in expected.items():
        assert reason in skipped[name]
        # One line on stderr naming the file and why.
        [line] = [ln for ln in result.err.splitlines() if name in ln]
        assert reason in line
    assert result.events("summary")[0]["indexed"] == 8


def test_symlink_loops_are_skipped(photos: Path, cache: Path, tmp_path: Path) -> None:
    (photos / "loop").symlink_to(photos, target_is_directory=True)
    (photos / "a.jpg").symlink_to(photos / "b.jpg")
    (photos / "b.jpg").symlink_to(photos / "a.jpg")
    plain = run("scan", photos, "--json", "--cache", cache)
    assert plain.code == ExitCode.OK  # links are not followed by default
    config = tmp_path / "follow.yaml"
    config.write_text("scan:\n  follow_symlinks: true\n")
    followed = run("scan", photos, "--json", "--cache", tmp_path / "f.db", "--config", config)
    assert followed.code == ExitCode.SKIPPED
    reasons = {Path(e["path"]).name: e["reason"] for e in followed.events("skipped")}
    assert reasons["a.jpg"] == "symlink loop" and reasons["b.jpg"] == "symlink loop"
    assert "symlink loop" in reasons["loop"]
    assert followed.events("summary")[0]["indexed"] == 8


def test_unreadable_file_is_skipped(photos: Path, cache: Path) -> None:
    (photos / "coffee.png").chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        # Root reads any file; drop the two capabilities that let it, as a service user lacks them.
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    proc = subprocess.run([*prefix, sys.executable, "-m", "dupwatch", "scan", str(photos), "--json",
                           "--cache", str(cache)], capture_output=True, text=True, check=False)
    assert proc.returncode == ExitCode.SKIPPED, proc.stderr
    skips = [ln for ln in proc.stdout.splitlines() if '"event": "skipped"' in ln]
    assert len(skips) == 1 and str(photos / "coffee.png") in skips[0] and "permission denied" in skips[0]
    assert f"skipped {photos / 'coffee.png'}: permission denied" in proc.stderr


def _copies(photos: Path, folder: Path, count: int) -> Path:
    """`count` copies of the sample photos, in turn: a folder a scan takes a while over."""
    folder.mkdir()
    sources = sorted(photos.iterdir())
    for n in range(count):
        src = sources[n % len(sources)]
        shutil.copy(src, folder / f"{n:04d}{src.suffix}")
    return folder


def test_kill_9_leaves_a_usable_cache(photos: Path, tmp_path: Path) -> None:
    many = _copies(photos, tmp_path / "many", 400)
    cache = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "dupwatch", "scan", str(many), "--json", "--cache", str(cache)]
    # Its own process group, killed whole, as systemd kills a service's cgroup: the scan and
    # its decoding workers die together, and none is left behind by the test.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    for _ in range(300):  # past the first committed batch (256 files), then kill it mid-scan
        proc.stdout.readline()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.1)
    result = run("scan", many, "--json", "--cache", cache)
    assert result.code == ExitCode.OK, result.err
    summary = result.events("summary")[0]
    assert summary["indexed"] + summary["unchanged"] == 400
    assert summary["unchanged"] > 0  # batches committed before the kill were kept


def test_workers_die_with_a_scan_killed_alone(photos: Path, tmp_path: Path) -> None:
    many = _copies(photos, tmp_path / "many", 200)
    cmd = [sys.executable, "-m", "dupwatch", "scan", str(many), "--json", "--workers", "2",
           "--cache", str(tmp_path / "c.db")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    try:
        for _ in range(20):  # the pool is up and working
            proc.stdout.readline()
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)  # the scan alone, not its group
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert workers and not any(_alive(p) for p in workers)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (the forkserver, its workers), from /proc."""
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = [int(k) for k in (task / "children").read_text().split()]
                found += kids
                todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_missing_folder_is_an_error(tmp_path: Path, cache: Path) -> None:
    result = run("scan", tmp_path / "nope", "--cache", cache)
    assert result.code == ExitCode.ERROR
    assert "nope" in result.err and "No such file" in result.err


def test_python_m_and_progress_free_pipe(photos: Path, cache: Path) -> None:
    result = run_process("scan", photos, "--cache", cache)
    assert result.code == 0, result.err
    assert "\r" not in result.err  # no progress bar when stderr is not a terminal
    assert "8 files" in result.err and "8 indexed" in result.err


def test_touched_or_refingerprinted_files_are_not_reported_again(photos: Path, cache: Path,
                                                                tmp_path: Path) -> None:
    shutil.copy(photos / "rocket.jpg", photos / "rocket2.jpg")
    _variant(photos / "chelsea.png", photos / "zz-chelsea.jpg", "resize")
    assert len(run("scan", photos, "--json", "--cache", cache).events("duplicate")) == 2
    for p in photos.iterdir():
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    touched = run("scan", photos, "--json", "--cache", cache)
    assert touched.events("summary")[0]["indexed"] == 10 and touched.events("duplicate") == []
    config = tmp_path / "ssim.yaml"
    config.write_text("confirm:\n  method: ssim\n")  # new fingerprints for every file
    again = run("scan", photos, "--json", "--cache", cache, "--config", config)
    assert again.events("summary")[0]["indexed"] == 10 and again.events("duplicate") == []


def test_file_vanishing_before_it_is_read_is_skipped(photos: Path, cache: Path) -> None:
    from dupwatch.config import Config
    from dupwatch.errors import SkipFile
    from dupwatch.pipeline import Pipeline
    from dupwatch.store.sqlite import SqliteStore
    from dupwatch.walk import Selection, walk

    config = Config()
    paths = list(walk([str(photos)], Selection(config.scan.extensions, config.scan.ignore), False))
    (photos / "coffee.png").unlink()  # after the walk listed it, before the pipeline reads it
    store = SqliteStore(cache)
    events = list(Pipeline(config, store).ingest(paths, workers=2))
    store.close()
    skips = [e for e in events if isinstance(e, SkipFile)]
    assert [(s.path, s.reason) for s in skips] == [
        (str(photos / "coffee.png"), "vanished before it could be read")]
    assert len(events) == 8


def test_heic_and_exif_rotated_copies_are_found(photos: Path, cache: Path) -> None:
    image = open_rgb(photos / "astronaut.png")
    image.save(photos / "zz-astronaut.heic", quality=70)
    exif = Image.Exif()
    exif[0x0112] = 6
    open_rgb(photos / "coffee.png").transpose(Image.Transpose.ROTATE_90).save(
        photos / "zz-coffee-rotated.jpg", exif=exif.tobytes())
    result = run("scan", photos, "--json", "--cache", cache)
    found = {Path(d["path"]).name: Path(d["match"]).name for d in result.events("duplicate")}
    assert found == {"zz-astronaut.heic": "astronaut.png", "zz-coffee-rotated.jpg": "coffee.png"}


def test_default_cache_is_in_the_user_cache_dir(photos: Path, tmp_path: Path) -> None:
    result = run("scan", photos)
    assert result.code == ExitCode.OK
    assert (tmp_path / "xdg-cache" / "dupwatch" / "index.sqlite3").is_file()


def test_hidden_and_partial_files_are_ignored(photos: Path, cache: Path) -> None:
    for name in (".hidden.jpg", "upload.jpg.part", "photo.crdownload", "IMG_1.tmp"):
        shutil.copy(photos / "rocket.jpg", photos / name)
    (photos / ".thumbnails").mkdir()
    shutil.copy(photos / "rocket.jpg", photos / ".thumbnails" / "rocket.jpg")
    shutil.copy(photos / "rocket.jpg", photos / "notes.txt")
    result = run("scan", photos, "--json", "--cache", cache)
    assert result.events("summary")[0]["indexed"] == 8 and result.events("duplicate") == []


@pytest.mark.parametrize(("transpose", "told"), [
    (Image.Transpose.ROTATE_90, "rotate-90-ccw"), (Image.Transpose.ROTATE_270, "rotate-90-cw"),
    (Image.Transpose.ROTATE_180, "rotate-180"), (Image.Transpose.FLIP_LEFT_RIGHT, "mirror"),
    (Image.Transpose.FLIP_TOP_BOTTOM, "flip"), (Image.Transpose.TRANSPOSE, "transpose"),
])
def test_turned_copies_are_found_by_default_with_dihedral_hashes(
        photos: Path, cache: Path, tmp_path: Path, transpose: Image.Transpose, told: str) -> None:
    open_rgb(photos / "astronaut.png").transpose(transpose).save(photos / "zz-turned.jpg", quality=85)
    config = tmp_path / "plain.yaml"
    config.write_text("candidates:\n  dihedral: false\n")
    plain = run("scan", photos, "--json", "--cache", tmp_path / "plain.db", "--config", config)
    assert plain.events("duplicate") == []  # the plain hash does not see a turned copy
    result = run("scan", photos, "--json", "--cache", cache)
    [dup] = result.events("duplicate")
    assert dup["path"] == str(photos / "zz-turned.jpg") and dup["match"] == str(photos / "astronaut.png")
    assert dup["transform"] == told and dup["method"] == "cosine" and dup["score"] >= 0.93


def test_an_emptied_root_is_not_forgotten_like_an_unmounted_disk(tmp_path: Path, photos: Path) -> None:
    library = tmp_path / "mnt"
    library.mkdir()
    for n in range(30):
        shutil.copy(photos / "chelsea.png", library / f"{n:02d}.png")
    cache = tmp_path / "c.db"
    run("scan", library, "--cache", cache)
    for p in library.iterdir():  # the share went away: an empty mount point is left
        p.unlink()
    result = run("scan", library, "--json", "--cache", cache)
    assert result.events("summary")[0]["forgotten"] == 0
    assert "all 30 cached files are gone; not forgetting them" in result.err
    (library / "00.png").write_bytes((photos / "chelsea.png").read_bytes())
    partly = run("scan", library, "--json", "--cache", cache)
    assert partly.events("summary")[0]["forgotten"] == 29  # some are there: real deletions
