"""Any file name works: names that are not UTF-8 (Latin-1 from old Windows shares and FAT sticks),
names with newlines, quotes, backslashes and markup are indexed, matched, reported, logged,
alerted, tagged and shown like any other, escaped where shown and kept as bytes where the file is
opened again.

Real files with those byte names on the real filesystem, `python -m dupwatch` as real processes,
the real notice log, a real HTTP receiver for alerts, the review page as a real server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from dupwatch.errors import ExitCode
from dupwatch.record import FileStat, Photo
from dupwatch.report import json_line, named, shown
from dupwatch.store.names import from_store, to_store
from dupwatch.store.sqlite import SqliteStore
from tests.conftest import SAMPLES, run_process
from tests.receiver import Receiver
from tests.test_watch import SETTLE, Start, duplicates, start  # noqa: F401  (a fixture)
from tests.test_xmp import exiftool

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"

# Sorted as dupwatch walks them (by bytes): each original comes before its copy.
SCRIPT = b"<script>alert(1)</script>".replace(b"/", b"\\") + b" 'q' \"qq\".jpg"  # no "/" in a name
ORIGINAL = b"caf\xe9.jpg"  # Latin-1 é: not UTF-8
COPY = b"caf\xe9\xff copy.jpg"
NEWLINE = b"new\nline \xe9.jpg"  # a copy of SCRIPT
# How `scan` and the watcher show them: each byte that is not UTF-8 as \xNN, a newline as \n.
SHOWN = {ORIGINAL: r"caf\xe9.jpg", COPY: r"caf\xe9\xff copy.jpg", NEWLINE: r"new\nline \xe9.jpg",
         SCRIPT: os.fsdecode(SCRIPT)}  # all printable: shown as it is


def two_photos() -> tuple[Path, Path]:
    """Two distinct real photographs: the shared ones where present, else scikit-image's."""
    if SHARED.is_dir():
        found = sorted(SHARED.rglob("*.jpg"))
        if len(found) >= 2:
            return found[0], found[1]
    return SAMPLES / "rocket.jpg", SAMPLES / "coffee.png"


def at(folder: Path, name: bytes) -> str:
    """The path of `name` in `folder`, as Python holds it (surrogate escapes for the bytes)."""
    return os.fsdecode(os.path.join(os.fsencode(folder), name))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A photo and its copy, both named in Latin-1; a photo with quotes, a backslash and markup
    in its name, and its copy named with a newline."""
    photos = tmp_path / "photos"
    photos.mkdir()
    first, second = two_photos()
    for source, names in ((first, (ORIGINAL, COPY)), (second, (SCRIPT, NEWLINE))):
        for name in names:
            shutil.copyfile(source, at(photos, name))
    return photos


def write_config(tmp_path: Path, settings: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def strict_json(line: str) -> dict[str, Any]:
    """A JSON line as a strict parser reads it: no lone surrogate escapes (Rust's serde_json,
    Go and jq refuse or mangle them)."""
    def no_surrogates(text: str) -> str:
        assert not any("\ud800" <= c <= "\udfff" for c in text), text
        return text

    record: dict[str, Any] = json.loads(line)
    for value in record.values():
        if isinstance(value, str):
            no_surrogates(value)
    return record


def bytes_of(record: dict[str, Any], key: str) -> bytes:
    """The exact bytes of a name in a JSON record: `<key>_bytes` when it is not UTF-8."""
    if f"{key}_bytes" in record:
        return base64.b64decode(record[f"{key}_bytes"])
    return str(record[key]).encode()


def test_the_store_mapping_is_lossless_and_keeps_prefixes() -> None:
    every_byte = bytes(range(1, 256)).replace(b"/", b"")
    names = [os.fsdecode(every_byte), "plain.jpg", "é.jpg", "\U0010ff80 private \U0010ff7f\U0010ffff.jpg",
             os.fsdecode(b"\xf4\x8f\xbe\x80 and \xed\xb3\xa9.jpg")]  # UTF-8 of U+10FF80; an encoded surrogate
    for name in names:
        stored = to_store(name)
        stored.encode("utf-8")  # what sqlite3 binds: strict UTF-8 works
        assert from_store(stored) == name
        assert to_store(name + "/x").startswith(stored + "/")
    assert len({to_store(n) for n in names}) == len(names)


def test_the_cache_keeps_every_name(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cache.sqlite3")
    folder = os.fsdecode(b"/photos/\xe9t\xe9")
    names = [f"{folder}/{n}" for n in (os.fsdecode(ORIGINAL), os.fsdecode(NEWLINE), "\U0010ff80.jpg",
                                       "percent % under_score.jpg")]
    plain = "/photos/été/plain.jpg"
    try:
        beside = [folder + "0.jpg", os.fsdecode(b"/photos/\xe9t\xe9\xff/a.jpg")]
        for number, path in enumerate([*names, plain, *beside]):
            store.put(Photo(path, FileStat(1, 1, 1, number), bytes(32), 10, 10), "plan")
            store.file_done()
        store.commit()
        for path in names:
            known = store.get(path)
            assert known is not None and store.path_of(known.id) == path
        assert sorted(store.paths_under(folder)) == sorted(names)  # and not the two beside it
    finally:
        store.close()
    # The names of UTF-8 files are stored as they were: a cache of an earlier version reads the same.
    with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
        stored = [r[0] for r in db.execute("SELECT path FROM files")]
    assert plain in stored


def test_json_lines_keep_the_bytes_and_read_back() -> None:
    record = {"event": "duplicate", "path": at(Path("/p"), COPY), "match": "/p/é.jpg", "score": 1.0}
    line = json_line(record)
    parsed = strict_json(line)
    assert parsed["path"] == r"/p/caf\xe9\xff copy.jpg" and "match_bytes" not in parsed
    assert bytes_of(parsed, "path") == b"/p/" + COPY
    assert named(parsed) == record
    assert shown(at(Path("/p"), NEWLINE)) == "/p/" + SHOWN[NEWLINE]


def test_scan_reports_and_remembers_names_of_any_bytes(folder: Path, cache: Path, tmp_path: Path) -> None:
    text = run_process("scan", folder, "--cache", cache)
    assert text.code == ExitCode.OK, text.err
    assert text.out.splitlines() == [
        f"{folder}/{SHOWN[COPY]}", f"    duplicates {folder}/{SHOWN[ORIGINAL]}  (exact copy)",
        f"{folder}/{SHOWN[NEWLINE]}", f"    duplicates {folder}/{SHOWN[SCRIPT]}  (exact copy)"]
    assert "4 indexed" in text.err

    # --json from a fresh cache: strict JSON, the exact bytes beside each name that is not UTF-8.
    fresh = tmp_path / "fresh.sqlite3"
    result = run_process("scan", folder, "--cache", fresh, "--json")
    assert result.code == ExitCode.OK, result.err
    records = [strict_json(line) for line in result.out.splitlines()]
    found = [(bytes_of(r, "path"), bytes_of(r, "match")) for r in records if r["event"] == "duplicate"]
    base = os.fsencode(folder) + b"/"
    assert found == [(base + COPY, base + ORIGINAL), (base + NEWLINE, base + SCRIPT)]
    assert records[-1]["indexed"] == 4

    again = run_process("scan", folder, "--cache", fresh, "--json")
    assert again.code == ExitCode.OK
    assert [(r["event"], r.get("unchanged")) for r in again.json()] == [("summary", 4)]

    # The notice log: each line strict JSON that reads back to the original bytes.
    logs = sorted((tmp_path / "xdg-state" / "dupwatch" / "log").glob("notices-*.jsonl"))
    assert len(logs) == 2  # each cache its own
    for logged in logs:
        lines = [strict_json(line) for line in logged.read_text(encoding="ascii").splitlines()]
        assert [(bytes_of(r, "path"), bytes_of(r, "match")) for r in lines] == found
    listed = run_process("notices", "--json", "--cache", fresh)
    assert [named(strict_json(line))["path"] for line in listed.out.splitlines()] == \
        [os.fsdecode(p) for p, _ in found]
    assert f"{folder}/{SHOWN[COPY]}\n    duplicates" in run_process("notices", "--cache", fresh).out


def test_query_and_compare_take_such_a_name(folder: Path, cache: Path) -> None:
    assert run_process("scan", folder, "--cache", cache).code == ExitCode.OK
    original = at(folder, ORIGINAL)
    table = run_process("query", original, "--cache", cache, "-k", "1")
    assert table.code == ExitCode.OK, table.err
    assert table.out.splitlines()[1].endswith(f"{folder}/{SHOWN[COPY]}")
    ranked = [strict_json(line) for line in
              run_process("query", original, "--cache", cache, "-k", "1", "--json").out.splitlines()]
    assert [bytes_of(r, "path") for r in ranked] == [os.fsencode(folder) + b"/" + COPY]

    compared = run_process("compare", original, at(folder, NEWLINE), "--method", "hash", "--json")
    assert compared.code == ExitCode.OK, compared.err
    record = strict_json(compared.out)
    assert bytes_of(record, "a") == os.fsencode(original)
    assert bytes_of(record, "b") == os.fsencode(folder) + b"/" + NEWLINE
    assert record["same_bytes"] is False and record["scores"]["hash"]["duplicate"] is False
    same = run_process("compare", original, at(folder, COPY), "--method", "hash")
    assert same.code == ExitCode.OK and "same bytes: yes" in same.out


def test_the_watcher_reports_such_a_name_and_restarts_cleanly(start: Start, tmp_path: Path,  # noqa: F811
                                                              cache: Path) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    first, _ = two_photos()
    shutil.copyfile(first, at(folder, ORIGINAL))
    config = write_config(tmp_path, {"watch": {"settle_seconds": SETTLE}})
    daemon = start("--config", config, "--cache", cache, folder)
    daemon.wait_log("caught up: 1 file in")
    shutil.copyfile(first, at(folder, COPY))
    line = daemon.wait_log(re.escape(f"{SHOWN[COPY]} duplicates"), timeout=10)
    assert line.endswith(f"dupwatch: {folder}/{SHOWN[COPY]} duplicates {folder}/{SHOWN[ORIGINAL]}"
                         "  (exact copy)")
    assert daemon.stop() == ExitCode.OK
    assert "Traceback" not in daemon.log()

    again = start("--config", config, "--cache", cache, folder)
    assert "0 indexed, 2 unchanged" in again.wait_log("caught up:")
    assert again.stop() == ExitCode.OK
    assert duplicates(again.log()) == [] and "Traceback" not in again.log()


def test_the_xmp_sidecar_has_the_photos_own_bytes(folder: Path, cache: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"notices": {"xmp": {"enabled": True}}})
    result = run_process("scan", folder, "--config", config, "--cache", cache)
    assert result.code == ExitCode.OK, result.err
    sidecars = sorted(n for n in os.listdir(os.fsencode(folder)) if n.endswith(b".xmp"))
    assert sidecars == [COPY + b".xmp", NEWLINE + b".xmp"]
    sidecar = Path(at(folder, COPY + b".xmp"))
    assert r'dupwatch:DuplicateOfName="caf\xe9.jpg"' in sidecar.read_text(encoding="utf-8")
    tags = exiftool(sidecar)
    assert tags["XMP-dupwatch:DuplicateOfName"] == SHOWN[ORIGINAL]
    assert tags["XMP-dupwatch:DuplicateOf"] == f"{folder}/{SHOWN[ORIGINAL]}"


def test_alerts_and_the_hook_name_it(folder: Path, cache: Path, tmp_path: Path) -> None:
    receiver = Receiver()
    out = tmp_path / "hook.jsonl"
    script = tmp_path / "hook.py"
    script.write_text("import json, os, sys\n"
                      f"with open({str(out)!r}, 'a') as f:\n"
                      "    f.write(json.dumps({'argv': [os.fsencode(a).hex() for a in sys.argv[1:]],"
                      " 'stdin': sys.stdin.read()}) + '\\n')\n")
    config = write_config(tmp_path, {"notices": {
        "apprise": {"urls": [receiver.url("phone")]},
        "exec": {"command": [sys.executable, str(script), "{path}", "{match}"]}}})
    try:
        result = run_process("scan", folder, "--config", config, "--cache", cache)
        assert result.code == ExitCode.OK, result.err
        bodies = receiver.wait(2)
    finally:
        receiver.stop()
    assert [b["title"] for b in bodies] == [f"Duplicate photo: {SHOWN[n]}" for n in (COPY, NEWLINE)]
    assert f"{folder}/{SHOWN[COPY]}\nduplicates {folder}/{SHOWN[ORIGINAL]}" in bodies[0]["message"]
    # The hook gets each name as one argument, its exact bytes, and the record on stdin.
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    base = os.fsencode(folder) + b"/"
    assert [[bytes.fromhex(a) for a in r["argv"]] for r in runs] == [[base + COPY, base + ORIGINAL],
                                                                      [base + NEWLINE, base + SCRIPT]]
    assert bytes_of(strict_json(runs[0]["stdin"]), "path") == base + COPY


def test_the_review_page_lists_them_escaped(folder: Path, cache: Path, tmp_path: Path) -> None:
    from tests.review_server import ReviewProcess

    assert run_process("scan", folder, "--cache", cache).code == ExitCode.OK
    server = ReviewProcess(tmp_path, "--cache", cache)
    try:
        pages = {}
        for page in ("", "pair/1", "pair/2"):
            with urllib.request.urlopen(server.url + page, timeout=10) as response:  # noqa: S310
                assert response.status == 200
                pages[page] = response.read().decode("utf-8")
        for number in (1, 2, 3, 4):  # every file's thumbnail, read from its byte name
            with urllib.request.urlopen(f"{server.url}file/{number}/small.jpg", timeout=10) as response:  # noqa: S310
                assert response.headers["Content-Type"] == "image/jpeg"
                assert response.read(3) == b"\xff\xd8\xff"
    finally:
        server.kill()
    assert SHOWN[COPY] in pages[""] and SHOWN[ORIGINAL] in pages[""] and r"new\nline \xe9.jpg" in pages[""]
    assert SHOWN[COPY] in pages["pair/1"]
    escaped = r"&lt;script&gt;alert(1)&lt;\script&gt; &#39;q&#39; &#34;qq&#34;.jpg"
    assert escaped in pages["pair/2"] and "<script>" not in pages["pair/2"]
    assert "Traceback" not in server.stderr.read_text(errors="replace")
