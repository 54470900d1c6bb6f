"""Files that are not what their name says, or not files at all: each skipped with one line.

Real files on a real filesystem: an EPS and a PDF named .jpg, a corrupt AVIF named .heic and
.jpg, a FIFO, devices, a socket, a sparse 3 GB file, a 9400×9400 PNG, TIFFs that make libtiff
and Pillow print; and a real `dupwatch scan` in its own process for what runs in workers.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from dupwatch.errors import ExitCode, SkipFile
from dupwatch.fingerprint import Plan, fingerprint_file
from tests.conftest import SAMPLES, Result

PLAN = Plan(("hash", "cosine"))
PHOTO = SAMPLES / "chelsea.png"
TIMEOUT = 60  # seconds: far beyond what any of these scans takes


def skip_reason(path: Path, plan: Plan = PLAN) -> str:
    result = fingerprint_file(str(path), plan)
    assert isinstance(result, SkipFile), f"{path.name} was not skipped"
    assert result.path == str(path)
    return result.reason


def scan(*args: str | Path, env: dict[str, str] | None = None, memory_gb: int = 2) -> Result:
    """`python -m dupwatch scan` in its own process, bounded in time and memory (a regression
    must fail the test, not hang it or fill the machine's memory)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_gb * 2**30, memory_gb * 2**30))

    # A session of its own: on a hang its workers, which hold the pipes too, are killed with it.
    proc = subprocess.Popen([sys.executable, "-m", "dupwatch", "scan", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True, preexec_fn=limit)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"dupwatch scan {' '.join(map(str, args))} hung")
    return Result(proc.returncode, out, err)


def skipped(result: Result) -> dict[str, str]:
    return {Path(e["path"]).name: e["reason"] for e in result.events("skipped")}


def assert_only_dupwatch_lines(err: str) -> None:
    stray = [line for line in err.splitlines() if line and not line.startswith("dupwatch:")]
    assert not stray, f"stderr lines that name no file and no program: {stray}"


# -- 1. only photo formats, and no external program ------------------------------------------


@pytest.fixture
def fake_ghostscript(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A `gs` first on PATH that leaves a marker file if anything runs it."""
    bin_dir, marker = tmp_path / "bin", tmp_path / "ghostscript-ran"
    bin_dir.mkdir()
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    gs.chmod(0o755)
    yield {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, marker


def test_postscript_named_jpg_is_skipped_and_ghostscript_never_runs(
        tmp_path: Path, fake_ghostscript: tuple[dict[str, str], Path]) -> None:
    env, marker = fake_ghostscript
    folder = tmp_path / "photos"
    folder.mkdir()
    with Image.open(PHOTO) as im:
        im.convert("RGB").save(folder / "holiday.jpg", "EPS")
        im.convert("RGB").save(folder / "cat.jpg", "JPEG")
    assert (folder / "holiday.jpg").read_bytes().startswith(b"%!PS")
    result = scan(folder, "--json", "--workers", "2", "--cache", tmp_path / "c.db", env=env)
    assert not marker.exists(), "Ghostscript ran on a file named .jpg"
    assert result.code == ExitCode.SKIPPED
    assert skipped(result) == {"holiday.jpg": "a PostScript document, not a photo"}
    assert result.events("summary")[0]["indexed"] == 1


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("scan.jpg", lambda im: _saved(im, "PDF"), "a PDF document, not a photo"),
    ("error.jpg", lambda im: b"\n<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n",
     "an HTML page, not a photo"),
    ("logo.png", lambda im: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
     "an SVG drawing, not a photo"),
    ("icon.png", lambda im: _saved(im.resize((64, 64)), "ICO"), "not a photo format dupwatch reads"),
    ("photo.jpg", lambda im: _saved(im, "JPEG2000"), "a JPEG 2000 image, not a photo"),
])
def test_other_formats_are_named_not_decoded(tmp_path: Path, name: str, make: object, reason: str) -> None:
    with Image.open(PHOTO) as im:
        data = make(im.convert("RGB"))  # type: ignore[operator]
    (tmp_path / name).write_bytes(data)
    assert skip_reason(tmp_path / name) == reason


def _saved(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


# -- 2. one skip boundary --------------------------------------------------------------------


def corrupt_avif() -> bytes:
    """A real AVIF of a photo whose first coded bytes are garbled: it opens, and fails to decode."""
    with Image.open(PHOTO) as im:
        data = bytearray(_saved(im.convert("RGB"), "AVIF"))
    start = data.index(b"mdat") + 4
    data[start:start + 100] = b"\xff" * 100
    return bytes(data)


@pytest.mark.parametrize("name", ["phone.heic", "phone.jpg"])
def test_corrupt_avif_is_skipped_with_one_short_line(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(corrupt_avif())
    reason = skip_reason(tmp_path / name)
    assert reason.startswith("corrupt or truncated image")
    assert "\n" not in reason and len(reason) <= 140


@pytest.mark.parametrize("name", ["phone.heic", "phone.jpg"])
def test_truncated_avif_is_skipped(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(corrupt_avif()[:2000])
    assert "corrupt or truncated" in skip_reason(tmp_path / name)


# -- 3. only regular files, never blocking ---------------------------------------------------


@pytest.fixture
def fifo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    os.mkfifo(folder / "y.jpg")
    with Image.open(PHOTO) as im:
        im.convert("RGB").save(folder / "cat.jpg", "JPEG")
    return folder


def test_fifo_named_on_the_command_line_is_skipped_without_hanging(fifo_folder: Path, tmp_path: Path) -> None:
    for workers in ("1", "2"):
        result = scan(fifo_folder / "y.jpg", "--json", "--workers", workers,
                      "--cache", tmp_path / f"{workers}.db")
        assert result.code == ExitCode.SKIPPED
        assert skipped(result) == {"y.jpg": "a FIFO, not a photo file"}
        assert "y.jpg: a FIFO, not a photo file" in result.err


def test_fifo_in_a_scanned_folder_never_hangs_the_scan(fifo_folder: Path, tmp_path: Path) -> None:
    result = scan(fifo_folder, "--json", "--workers", "2", "--cache", tmp_path / "c.db")
    assert result.events("summary")[0]["indexed"] == 1
    # The walk passes over what is not a regular file; if it ever hands one on, it is skipped.
    assert skipped(result) in ({}, {"y.jpg": "a FIFO, not a photo file"})


def test_fifo_given_to_a_worker_is_skipped(fifo_folder: Path) -> None:
    # In a process of its own: the old code blocked forever in open().
    code = ("import sys; from dupwatch.fingerprint import Plan, fingerprint_file; "
            "print(fingerprint_file(sys.argv[1], Plan(('hash',))))")
    proc = subprocess.run([sys.executable, "-c", code, str(fifo_folder / "y.jpg")],
                          capture_output=True, text=True, timeout=TIMEOUT, check=True)
    assert proc.stdout.strip() == f"{fifo_folder / 'y.jpg'}: a FIFO, not a photo file"


def test_devices_folders_and_sockets_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "null.jpg").symlink_to("/dev/null")
    (tmp_path / "album.jpg").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.jpg"))
    try:
        assert skip_reason(tmp_path / "null.jpg") == "a device, not a photo file"
        assert skip_reason(tmp_path / "album.jpg") == "a folder, not a photo file"
        assert skip_reason(tmp_path / "s.jpg") == "a socket, not a photo file"
    finally:
        sock.close()


def test_link_to_dev_zero_is_skipped_as_a_device(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "z.jpg").symlink_to("/dev/zero")
    config = tmp_path / "follow.yaml"
    config.write_text("scan:\n  follow_symlinks: true\n")
    result = scan(folder / "z.jpg", "--json", "--config", config, "--cache", tmp_path / "c.db", memory_gb=1)
    assert result.code == ExitCode.SKIPPED
    assert skipped(result) == {"z.jpg": "a device, not a photo file"}


# -- 4. bounded memory per file --------------------------------------------------------------


def test_sparse_3_gb_file_is_skipped_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        os.truncate(f.fileno(), 3 * 2**30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert skip_reason(big) == "file too large (3.0 GB; scan.max_file_mb is 300)"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing read


def test_max_file_mb_is_the_limit(tmp_path: Path) -> None:
    with Image.open(PHOTO) as im:
        im.convert("RGB").resize((2000, 1500)).save(tmp_path / "cat.png")
    assert (tmp_path / "cat.png").stat().st_size > 2**20
    assert skip_reason(tmp_path / "cat.png", Plan(("hash",), max_file_mb=1)).startswith("file too large (")
    photo = fingerprint_file(str(tmp_path / "cat.png"), Plan(("hash",), max_file_mb=2))
    assert not isinstance(photo, SkipFile)


def write_big_png(path: Path, side: int, palette: bool) -> None:
    """A `side`×`side` checkerboard PNG written a row at a time (the test never holds its pixels)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    squares = [(x // 500) % 2 for x in range(side)]
    rows = []
    for parity in (0, 1):
        if palette:
            rows.append(b"\0" + bytes(s ^ parity for s in squares))
        else:
            rows.append(b"\0" + b"".join(b"\xe0\x40\x20" if s ^ parity else b"\x10\x30\xc0" for s in squares))
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(rows[(y // 500) % 2]) for y in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 3 if palette else 2, 0, 0, 0)
    body = chunk(b"IHDR", header)
    if palette:
        body += chunk(b"PLTE", b"\x10\x30\xc0\xe0\x40\x20")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def test_huge_rgb_png_is_refused_from_its_header(tmp_path: Path) -> None:
    write_big_png(tmp_path / "pano.png", 9400, palette=False)
    assert (tmp_path / "pano.png").stat().st_size < 2**20
    reason = skip_reason(tmp_path / "pano.png")
    assert reason.startswith("image too large to decode (9400×9400 pixels")


def test_huge_palette_png_is_decoded_small(tmp_path: Path) -> None:
    write_big_png(tmp_path / "pano.png", 9400, palette=True)
    photo = fingerprint_file(str(tmp_path / "pano.png"), PLAN)
    assert not isinstance(photo, SkipFile), photo
    assert (photo.width, photo.height) == (9400, 9400)


# -- 5. quiet stderr -------------------------------------------------------------------------


def noisy_tiffs(folder: Path) -> None:
    """A deflate TIFF whose compressed strip is garbled (libtiff prints to fd 2 while decoding)
    and one cut short inside its EXIF (Pillow warns through `warnings`)."""
    with Image.open(SAMPLES / "coffee.png") as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "TIFF", compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    data[5000:9000] = bytes((i * 131 + 7) % 256 for i in range(4000))
    (folder / "garbled.tif").write_bytes(bytes(data))
    (folder / "cut.tif").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 3 // 4])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_decoder_messages_never_reach_stderr_unnamed(tmp_path: Path, workers: str) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    noisy_tiffs(folder)
    result = scan(folder, "--workers", workers, "--cache", tmp_path / "c.db")
    assert result.code == ExitCode.SKIPPED
    assert_only_dupwatch_lines(result.err)
    assert any("garbled.tif" in line for line in result.err.splitlines())


def test_a_raw_whose_preview_header_claims_more_than_the_file_holds_is_decoded_without_it(
        tmp_path: Path) -> None:
    # What `benchmarks/fuzz.py` found (mutant 10922 of seed 1): a DNG whose IFD0 thumbnail says
    # 65535 pixels wide. LibRaw hands over an array reaching past its own buffer, and reading
    # it crashed a worker on some runs.
    import rawpy

    from dupwatch import raw
    from tests.dng import dng_bytes

    with Image.open(SAMPLES / "chelsea.png") as im:
        data = bytearray(dng_bytes(im.convert("RGB")))
    assert struct.unpack_from("<HHII", data, 22) == (256, 4, 1, 256)  # IFD0's ImageWidth: 256
    data[30:32] = b"\xff\xff"
    path = tmp_path / "lying.dng"
    path.write_bytes(data)
    with rawpy.imread(str(path)) as opened:
        pixels = opened.extract_thumb().data
        assert not isinstance(pixels, bytes) and pixels.nbytes > raw.BITMAP_SLACK * len(data)  # the lie
        assert raw._preview(str(path), opened, 64, False, 1, len(data)) is None
    for _ in range(5):  # the crash came on some runs only: each in a process of its own
        code = subprocess.run([sys.executable, "-c", "import sys; from dupwatch.fingerprint import *;"
                               "print(fingerprint_file(sys.argv[1], Plan(('hash', 'cosine'))))", str(path)],
                              capture_output=True, timeout=120, check=False).returncode
        assert code == 0


def test_a_broken_file_is_said_once_per_content(tmp_path: Path) -> None:
    """Each run (each start of the service) read it again and said so again: a truncated JPEG,
    a text file named .jpg and an empty one are said once, then counted, until they change."""
    from tests.conftest import run_process

    folder = tmp_path / "photos"
    folder.mkdir()
    whole = io.BytesIO()
    Image.open(PHOTO).convert("RGB").save(whole, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    (folder / "notes.jpg").write_text("not a photo\n")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "photo.jpg").write_bytes(whole.getvalue())
    cache = tmp_path / "cache.db"
    first = run_process("scan", folder, "--cache", cache)
    assert first.code == ExitCode.SKIPPED
    assert sorted(line.split(":")[1].strip().rsplit("/", 1)[1] for line in first.err.splitlines()
                  if "skipped /" in line) == ["empty.jpg", "notes.jpg", "truncated.jpg"]
    again = run_process("scan", folder, "--cache", cache)
    assert again.code == ExitCode.SKIPPED  # still skipped, and the exit code says so
    assert "skipped /" not in again.err and "3 skipped (3 as at an earlier run" in again.err
    verbose = run_process("scan", "-v", folder, "--cache", cache)
    assert verbose.err.count("(at an earlier run; tried again when the file changes)") == 3
    # Changed (here completed), it is read again, and found.
    (folder / "truncated.jpg").write_bytes(whole.getvalue())
    fixed = run_process("scan", folder, "--cache", cache)
    assert "truncated.jpg\n    duplicates" in fixed.out and "2 skipped (2 as at an earlier run" in fixed.err
