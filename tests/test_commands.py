"""`compare` and `query`: the same fingerprints and methods as `scan`, nothing recorded."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from PIL import Image

from dupwatch.errors import ExitCode
from dupwatch.index.hamming import HammingIndex
from dupwatch.methods.registry import METHODS
from dupwatch.store.sqlite import SqliteStore
from tests.conftest import SAMPLES, open_rgb, run, run_process


def test_compare_shows_every_method(tmp_path: Path) -> None:
    small = tmp_path / "small.jpg"
    open_rgb(SAMPLES / "astronaut.png").resize((200, 200)).save(small, quality=70)
    result = run("compare", SAMPLES / "astronaut.png", small)
    assert result.code == ExitCode.OK
    lines = result.out.splitlines()
    assert lines[0] == "same bytes: no"
    rows = {line.split()[0]: line.split() for line in lines[2:] if not line.startswith("geometry:")}
    assert set(rows) == set(METHODS)
    assert rows["cosine"][3] == "yes" and float(rows["cosine"][1]) >= 0.93
    assert rows["geometry"][3] == "yes"  # a 200×200 copy still has its keypoints where they were
    assert lines[-1].startswith("geometry: ") and lines[-1].endswith("the same framing")


def test_compare_json_of_different_photos(tmp_path: Path) -> None:
    result = run("compare", SAMPLES / "astronaut.png", SAMPLES / "coffee.png", "--json")
    [record] = result.json()
    assert record["same_bytes"] is False
    assert set(record["scores"]) == set(METHODS)
    assert not any(s["duplicate"] for s in record["scores"].values())
    assert isinstance(record["scores"]["hash"]["distance"], int)


def test_compare_one_method_and_a_bad_one(tmp_path: Path) -> None:
    one = run("compare", SAMPLES / "chelsea.png", SAMPLES / "chelsea.png", "--method", "ssim", "--json")
    assert json.loads(one.out)["scores"]["ssim"]["score"] == 1.0
    assert json.loads(one.out)["same_bytes"] is True
    bad = run("compare", SAMPLES / "chelsea.png", SAMPLES / "coffee.png", "--method", "nope")
    assert bad.code == ExitCode.ERROR and "--method: unknown method 'nope'" in bad.err


def test_compare_a_broken_file_names_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    result = run("compare", SAMPLES / "chelsea.png", broken)
    assert result.code == ExitCode.ERROR
    assert str(broken) in result.err


def test_query_ranks_the_original_first(photos: Path, cache: Path, tmp_path: Path) -> None:
    run("scan", photos, "--cache", cache)
    probe = tmp_path / "probe.jpg"
    image = open_rgb(photos / "chelsea.png")
    image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS).save(probe, quality=60)
    result = run("query", probe, "-k", "3", "--cache", cache, "--json")
    assert result.code == ExitCode.OK
    ranked = result.json()
    assert 1 <= len(ranked) <= 3
    assert ranked[0]["path"] == str(photos / "chelsea.png") and ranked[0]["duplicate"] is True
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert not any(r["duplicate"] for r in ranked[1:])
    with sqlite3.connect(cache) as db:  # a query records nothing
        assert db.execute("SELECT count(*) FROM files").fetchone()[0] == 8


def test_query_exact_copy_and_text_output(photos: Path, cache: Path) -> None:
    run("scan", photos, "--cache", cache)
    result = run_process("query", SAMPLES / "coffee.png", "--cache", cache)
    assert result.code == ExitCode.OK
    header, first = result.out.splitlines()[:2]
    assert header.split() == ["score", "method", "distance", "duplicate", "path"]
    assert first.split() == ["1.000", "sha256", "0", "yes", str(photos / "coffee.png")]


def test_query_imports_only_what_it_needs(photos: Path, cache: Path) -> None:
    """A query's run time is mostly imports: none of a module it does not use (np.median alone
    would pull numpy.ma in)."""
    run("scan", photos, "--cache", cache)
    code = ("import sys; from dupwatch.cli import main;"
            f"main(['query', {str(SAMPLES / 'astronaut.png')!r}, '--cache', {str(cache)!r}]);"
            "print(sorted({'numpy.ma', 'torch', 'scipy', 'cv2'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "[]"


def test_a_decoding_worker_imports_no_config() -> None:
    """Each scan starts a forkserver that imports what a worker runs: the config's pydantic (and
    the store) are a tenth of a second of CPU it never uses."""
    code = ("import sys, dupwatch.fingerprint;"
            "print(sorted({'pydantic', 'dupwatch.config', 'dupwatch.store'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "[]"


def test_query_empty_index(tmp_path: Path, cache: Path) -> None:
    result = run("query", SAMPLES / "coffee.png", "--cache", cache)
    assert result.code == ExitCode.OK and "no similar image" in result.out


def test_query_of_a_missing_file_says_so(tmp_path: Path, cache: Path) -> None:
    missing = tmp_path / "no-such.jpg"
    result = run("query", missing, "--cache", cache)
    assert result.code == ExitCode.ERROR
    assert result.err == f"dupwatch: {missing}: no such file\n"
    assert not cache.exists()  # nothing opened for a photo that is not there


def test_compare_of_a_missing_file_says_so(tmp_path: Path) -> None:
    """Main said the file had "vanished before it could be read", as of a file a scan lost."""
    missing = tmp_path / "no-such.jpg"
    for args in ((missing, SAMPLES / "coffee.png"), (SAMPLES / "coffee.png", missing)):
        result = run("compare", *args)
        assert result.code == ExitCode.ERROR
        assert result.err == f"dupwatch: {missing}: no such file\n"


def test_scan_without_a_path_scans_the_configs_watch_paths(photos: Path, cache: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"watch:\n  paths: [{photos}]\n")
    result = run("scan", "--config", config, "--cache", cache)
    assert result.code == ExitCode.OK, result.err
    assert "8 indexed" in result.err
    nothing = run("scan", "--cache", cache)
    assert nothing.code == ExitCode.USAGE and "nothing to scan" in nothing.err


def test_query_keeps_its_index_beside_the_cache_and_never_a_stale_one(photos: Path, cache: Path,
                                                                      tmp_path: Path) -> None:
    """The first query saves the hash index beside the cache; a scan that changes the hashes
    after it saves them anew as it ends, a change made by no scan of ours makes the next query
    read them afresh, and a cache made anew is not fooled by an index of the old one."""
    later = tmp_path / "later"
    later.mkdir()
    (photos / "chelsea.png").rename(later / "chelsea.png")
    run("scan", photos, "--cache", cache)
    probe = tmp_path / "probe.jpg"
    open_rgb(later / "chelsea.png").save(probe, quality=70)
    first = run_process("query", probe, "--cache", cache, "--json")
    assert first.code == ExitCode.OK and not any(r["duplicate"] for r in first.json())
    saved = cache.with_name(cache.name + ".hamming.chash-1")
    assert saved.is_file()
    run("scan", later, "--cache", cache)
    store = SqliteStore(cache)
    try:
        stamp = store.hash_stamp()
    finally:
        store.close()
    assert stamp is not None and HammingIndex.load(saved, stamp) is not None  # saved as the scan ended
    again = run_process("query", probe, "--cache", cache, "--json")
    assert again.json()[0]["path"] == str(later / "chelsea.png") and again.json()[0]["duplicate"]
    kept = saved.read_bytes()
    with sqlite3.connect(cache) as db:  # its hash taken out by another writer than a scan of ours
        db.execute("DELETE FROM hashes WHERE file_id = (SELECT id FROM files WHERE path = ?)",
                   (str(later / "chelsea.png"),))
    gone = run_process("query", probe, "--cache", cache, "--json")
    assert not any(r["path"] == str(later / "chelsea.png") for r in gone.json())
    for name in (cache, cache.with_name(cache.name + "-wal"), cache.with_name(cache.name + "-shm")):
        name.unlink(missing_ok=True)
    run("scan", photos, "--cache", cache)  # the cache made anew, without the later photo
    saved.write_bytes(kept)  # an index of the old cache, which held it
    last = run_process("query", probe, "--cache", cache, "--json")
    assert not any(r["path"] == str(later / "chelsea.png") for r in last.json())
