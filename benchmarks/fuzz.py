"""Fuzz the fingerprinting: mutated photo files of every format dupwatch reads, each through
`fingerprint_file`, which must return a Photo or a SkipFile and never raise, hang or crash.

    python benchmarks/fuzz.py [--count 100000 | --quick] [--seed 1] [--workers 2] [--timeout 5]
                              [--keep DIR] [--json FILE] [--photos DIR]
    python benchmarks/fuzz.py --replay FILE     # one kept mutant, here, with its traceback
    python benchmarks/fuzz.py --seed 1 --mutant N --keep DIR   # mutant N made again, replayed

Seeds: a few of the shared photos, shrunk to 256–640 px and written (in a temporary folder) as
JPEG (plain, progressive, EXIF-rotated), PNG (RGB, palette, 16-bit, alpha), TIFF (uncompressed,
LZW, JPEG), WebP, GIF, BMP, HEIC, AVIF and DNG (tests/dng.py). Mutant n of a run is made from
`random.Random(f"{seed}:{n}")` alone, so any one of them can be made again: bit flips, bytes set
to boundary values, chunks deleted, duplicated or inserted, truncation, a header field of the
format (PNG IHDR with its CRC made good, JPEG SOF and segment lengths, TIFF IFD counts, types
and offsets, ISOBMFF box sizes, RIFF, GIF and BMP fields) set to a boundary value, two files
spliced; sometimes two or three at once, sometimes under another format's extension.

Each mutant runs in a worker process (the pipeline's own forkserver start) under a time limit: a
worker past --timeout seconds of CPU (or 4× that of wall-clock) is killed and replaced ("over
time"); one that dies is a "crash". Uncaught
exceptions, over-time and crashed mutants are copied to --keep for `--replay`. The exit code is
1 when a target is missed: an uncaught exception, a file over the limit, a crash, or a worker
past 300 MB resident.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import random
import resource
import shutil
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pillow_heif
from PIL import Image

from benchmarks.common import arguments, cpu_seconds, status_kib, summary
from dupwatch.bench.variants import photo_paths
from dupwatch.config import Config
from dupwatch.errors import SkipFile
from dupwatch.fingerprint import Plan, fingerprint_file
from dupwatch.pipeline import Pipeline
from dupwatch.store.sqlite import SqliteStore
from tests.dng import dng_bytes

RSS_TARGET_MB = 300
QUICK_COUNT = 2000
SIDES = (256, 384, 512, 640)  # long side of the seeds, one per photo in turn

# -- seeds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    kind: str  # e.g. "png-palette"
    suffix: str
    data: bytes


def _encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def _exif_rotated(im: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: a viewer turns it 90° clockwise
    return _encode(im.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=85, exif=exif)


def _sixteen_bit(im: Image.Image) -> bytes:
    grey = np.asarray(im.convert("L"), dtype=np.uint16) * 257
    return _encode(Image.fromarray(grey), "PNG")


def _with_alpha(im: Image.Image) -> bytes:
    rgba = im.convert("RGBA")
    ramp = np.linspace(0, 255, rgba.width, dtype=np.uint8)
    rgba.putalpha(Image.fromarray(np.tile(ramp, (rgba.height, 1))))
    return _encode(rgba, "PNG")


def _palette(im: Image.Image) -> Image.Image:
    return im.quantize(256, method=Image.Quantize.FASTOCTREE)  # the default median cut is slow


ENCODERS: dict[str, tuple[str, Callable[[Image.Image], bytes]]] = {
    "jpeg": (".jpg", lambda im: _encode(im, "JPEG", quality=85)),
    "jpeg-progressive": (".jpg", lambda im: _encode(im, "JPEG", quality=85, progressive=True)),
    "jpeg-exif": (".jpg", _exif_rotated),
    "png-rgb": (".png", lambda im: _encode(im, "PNG")),
    "png-palette": (".png", lambda im: _encode(_palette(im), "PNG")),
    "png-16bit": (".png", _sixteen_bit),
    "png-alpha": (".png", _with_alpha),
    "tiff": (".tif", lambda im: _encode(im, "TIFF")),
    "tiff-lzw": (".tif", lambda im: _encode(im, "TIFF", compression="tiff_lzw")),
    "tiff-jpeg": (".tif", lambda im: _encode(im, "TIFF", compression="jpeg")),
    "webp": (".webp", lambda im: _encode(im, "WEBP", quality=80)),
    "gif": (".gif", lambda im: _encode(_palette(im), "GIF")),
    "bmp": (".bmp", lambda im: _encode(im, "BMP")),
    "heic": (".heic", lambda im: _encode(im, "HEIF", quality=80, enc_params={"preset": "ultrafast"})),
    "avif": (".avif", lambda im: _encode(im, "AVIF", quality=80, speed=10)),
    "dng": (".dng", lambda im: dng_bytes(im, thumbnail=128)),
}


def make_seeds(photos: Path, count: int) -> list[Seed]:
    """`count` photos spread over the folder, shrunk, each in every format."""
    pillow_heif.register_heif_opener()  # HEIF saving; AVIF is Pillow's own
    paths = photo_paths(photos)
    if not paths:
        raise SystemExit(f"no photos in {photos}")
    chosen = [paths[i * len(paths) // count] for i in range(min(count, len(paths)))]
    seeds = []
    for n, path in enumerate(chosen):
        with Image.open(path) as im:
            photo = im.convert("RGB")
        photo.thumbnail((SIDES[n % len(SIDES)],) * 2)
        for kind, (suffix, encode) in ENCODERS.items():
            seeds.append(Seed(kind, suffix, encode(photo)))
    return seeds


# -- header fields: where each format keeps its numbers -------------------------------------


Order = Literal["big", "little"]


@dataclass(frozen=True)
class Field:
    offset: int
    size: int  # 1, 2, 3 or 4 bytes
    order: Order
    crc: tuple[int, int] | None = None  # a PNG chunk (type + data) whose CRC follows it


def _u(data: bytes, offset: int, size: int, order: Order) -> int:
    return int.from_bytes(data[offset:offset + size], order)


def png_fields(data: bytes) -> list[Field]:
    out, at = [], 8
    while at + 12 <= len(data):
        length, kind = _u(data, at, 4, "big"), data[at + 4:at + 8]
        out.append(Field(at, 4, "big"))
        body = (at + 4, at + 8 + length)
        if kind == b"IHDR" and length >= 13:
            out += [Field(at + 8, 4, "big", body), Field(at + 12, 4, "big", body)]  # width, height
            out += [Field(at + 16 + i, 1, "big", body) for i in range(5)]  # depth, colour, ..., interlace
        elif kind in (b"PLTE", b"tRNS", b"pHYs", b"acTL", b"fcTL") and length:
            out += [Field(at + 8 + i, 4 if length >= i + 4 else 1, "big", body)
                    for i in range(0, min(length, 32), 4)]
        at += 12 + length
    return out


def jpeg_fields(data: bytes) -> list[Field]:
    out, at = [], 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            at = data.find(b"\xff", at + 1)  # entropy-coded data: to the next marker
            if at < 0:
                break
            continue
        marker = data[at + 1]
        if marker in (0x00, 0xFF) or 0xD0 <= marker <= 0xD9:
            at += 2 if marker != 0xFF else 1
            continue
        length = _u(data, at + 2, 2, "big")
        out.append(Field(at + 2, 2, "big"))
        body = at + 4
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            out += [Field(body, 1, "big"), Field(body + 1, 2, "big"), Field(body + 3, 2, "big"),
                    Field(body + 5, 1, "big")]
            out += [Field(body + 6 + i, 1, "big") for i in range(min(9, length - 8))]  # components
        elif marker in (0xDA, 0xDB, 0xC4, 0xDD):  # SOS, DQT, DHT, DRI: their first bytes
            out += [Field(body + i, 1, "big") for i in range(min(8, length - 2))]
        elif marker == 0xE1 and data[body:body + 6] == b"Exif\0\0":
            exif = tiff_fields(data[body + 6:at + 2 + length])  # the orientation among them
            out += [Field(body + 6 + f.offset, f.size, f.order) for f in exif]
        at += 2 + length
    return out


def tiff_fields(data: bytes) -> list[Field]:
    if data[:4] not in (b"II*\0", b"MM\0*"):
        return []
    order: Order = "little" if data[:2] == b"II" else "big"
    out, todo, seen = [Field(4, 4, order)], [_u(data, 4, 4, order)], set[int]()
    while todo and len(seen) < 16:
        ifd = todo.pop()
        if ifd in seen or ifd + 2 > len(data):
            continue
        seen.add(ifd)
        count = _u(data, ifd, 2, order)
        out.append(Field(ifd, 2, order))
        for n in range(min(count, 64)):
            entry = ifd + 2 + 12 * n
            if entry + 12 > len(data):
                break
            out += [Field(entry, 2, order), Field(entry + 2, 2, order), Field(entry + 4, 4, order),
                    Field(entry + 8, 4, order)]
            tag, kind = _u(data, entry, 2, order), _u(data, entry + 2, 2, order)
            number = _u(data, entry + 4, 4, order)
            if tag in (330, 34665) and kind in (4, 13):  # SubIFDs, the EXIF IFD
                spot = entry + 8 if number == 1 else _u(data, entry + 8, 4, order)
                todo += [_u(data, spot + 4 * i, 4, order) for i in range(min(number, 4))]
            if tag in (273, 279) and number > 1:  # strip offsets and byte counts out of line
                spot = _u(data, entry + 8, 4, order)
                out += [Field(spot + 4 * i, 4, order) for i in range(min(number, 8))]
        nxt = ifd + 2 + 12 * count
        if nxt + 4 <= len(data):
            out.append(Field(nxt, 4, order))
            todo.append(_u(data, nxt, 4, order))
    return out


# ISOBMFF boxes that hold boxes (meta is a full box: 4 bytes of version and flags first).
CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0, b"moov": 0, b"trak": 0, b"mdia": 0,
              b"minf": 0, b"stbl": 0, b"iinf": 6, b"iref": 4}


def box_fields(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[Field]:
    """HEIC and AVIF: each box's size, and the first numbers of every leaf box (ispe's width and
    height, iloc's offsets and lengths, pitm, hvcC/av1C)."""
    out, at, end = [], start, len(data) if end is None else end
    while at + 8 <= end and depth < 6:
        size, kind = _u(data, at, 4, "big"), data[at + 4:at + 8]
        if size < 8 or at + size > end:
            break
        out.append(Field(at, 4, "big"))
        if kind in CONTAINERS:
            out += box_fields(data, at + 8 + CONTAINERS[kind], at + size, depth + 1)
        else:
            out += [Field(at + 8 + i, 4, "big") for i in range(0, min(size - 8, 48) - 3, 2)]
        at += size
    return out


def riff_fields(data: bytes) -> list[Field]:
    out, at = [Field(4, 4, "little")], 12
    while at + 8 <= len(data):
        size = _u(data, at, 4, "little")
        out.append(Field(at, 4, "little"))
        out += [Field(at + 8 + i, 2, "little") for i in range(0, min(size, 12), 2)]  # VP8/VP8L/VP8X heads
        at += 8 + size + size % 2
    return out


def gif_fields(data: bytes) -> list[Field]:
    out = [Field(6, 2, "little"), Field(8, 2, "little"), Field(10, 1, "little")]
    at = data.find(b"\x2c", 13)  # the first image descriptor, near enough
    if at > 0:
        out += [Field(at + 1 + 2 * i, 2, "little") for i in range(4)] + [Field(at + 9, 1, "little"),
                                                                         Field(at + 10, 1, "little")]
    return out


def bmp_fields(data: bytes) -> list[Field]:
    return [Field(o, s, "little") for o, s in ((2, 4), (10, 4), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2),
                                               (30, 4), (34, 4), (46, 4), (50, 4))]


def header_fields(data: bytes) -> list[Field]:
    """The numbered fields of whatever format `data` is in, found by its magic bytes."""
    if data.startswith(b"\x89PNG"):
        found = png_fields(data)
    elif data.startswith(b"\xff\xd8"):
        found = jpeg_fields(data)
    elif data[:4] in (b"II*\0", b"MM\0*"):
        found = tiff_fields(data)
    elif data[4:8] == b"ftyp":
        found = box_fields(data)
    elif data.startswith(b"RIFF"):
        found = riff_fields(data)
    elif data.startswith(b"GIF"):
        found = gif_fields(data)
    elif data.startswith(b"BM"):
        found = bmp_fields(data)
    else:
        found = []
    return [f for f in found if f.offset + f.size <= len(data)]


def boundary(old: int, size: int, rng: random.Random) -> int:
    top = (1 << (8 * size)) - 1
    values = [0, 1, top, top >> 1, (top >> 1) + 1, top - 1, old + 1, max(old - 1, 0), old * 2, old >> 1,
              old + rng.randint(-64, 64)]
    if size >= 2:
        values += [0x7FFF, 0xFFFF, 30000, 65500]
    if size >= 4:
        values += [0x10000, 0x40000, 0x7FFFFFFF, 0xFFFFFFF0]
    return rng.choice(values) & top


# -- mutations ------------------------------------------------------------------------------


Mutation = Callable[[bytes, random.Random, Sequence[Seed]], bytes]
BOUNDARY_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


def flip_bits(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    out = bytearray(data)
    for _n in range(rng.choice((1, 1, 2, 4, 8, 32))):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_bytes(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    out = bytearray(data)
    # Headers matter most: half the time, only the first 1 KiB.
    span = len(out) if rng.random() < 0.5 else min(len(out), 1024)
    for _n in range(rng.randint(1, 16)):
        out[rng.randrange(span)] = rng.choice(BOUNDARY_BYTES)
    return bytes(out)


def _span(data: bytes, rng: random.Random) -> tuple[int, int]:
    start = rng.randrange(len(data))
    length = rng.choice((1, 2, 4, 16, 256, rng.randint(1, max(1, len(data) // 2))))
    return start, min(len(data), start + length)


def delete_chunk(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    start, end = _span(data, rng)
    return data[:start] + data[end:]


def duplicate_chunk(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    start, end = _span(data, rng)
    return data[:end] + data[start:end] * rng.choice((1, 1, 2, 16)) + data[end:]


def insert_chunk(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    at, length = rng.randrange(len(data) + 1), rng.choice((1, 4, 16, 256, 4096))
    filler = rng.randbytes(length) if rng.random() < 0.5 else bytes([rng.choice(BOUNDARY_BYTES)]) * length
    return data[:at] + filler + data[at:]


def truncate(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    # Cuts in the headers are the interesting ones: half the time, in the first 2 KiB.
    limit = len(data) if rng.random() < 0.5 else min(len(data), 2048)
    return data[:rng.randrange(1, limit)]


def tamper_header(data: bytes, rng: random.Random, _: Sequence[Seed]) -> bytes:
    """One numbered field of the format set to a boundary value; a PNG chunk's CRC made good, so
    the decoder believes the new number rather than rejecting the chunk."""
    fields = header_fields(data)
    if not fields:
        return set_bytes(data, rng, [])
    out = bytearray(data)
    for _n in range(rng.choice((1, 1, 1, 2, 3))):
        f = rng.choice(fields)
        value = boundary(_u(data, f.offset, f.size, f.order), f.size, rng)
        out[f.offset:f.offset + f.size] = value.to_bytes(f.size, f.order)
        if f.crc is not None and f.crc[1] + 4 <= len(out):
            out[f.crc[1]:f.crc[1] + 4] = struct.pack(">I", zlib.crc32(out[f.crc[0]:f.crc[1]]))
    return bytes(out)


def splice(data: bytes, rng: random.Random, seeds: Sequence[Seed]) -> bytes:
    other = rng.choice(seeds).data
    return data[:rng.randrange(1, len(data) + 1)] + other[rng.randrange(len(other)):]


MUTATIONS: dict[str, Mutation] = {
    "bit-flip": flip_bits, "byte-set": set_bytes, "chunk-delete": delete_chunk,
    "chunk-duplicate": duplicate_chunk, "chunk-insert": insert_chunk, "truncate": truncate,
    "header": tamper_header, "splice": splice,
}
# Header tampering finds the most; the rest in equal shares.
WEIGHTS = {name: 3 if name == "header" else 1 for name in MUTATIONS}


@dataclass(frozen=True)
class Mutant:
    n: int
    kind: str  # the seed's format
    mutations: tuple[str, ...]
    suffix: str
    data: bytes

    @property
    def label(self) -> str:
        return "+".join(self.mutations)


def mutant(seeds: Sequence[Seed], seed: int, n: int) -> Mutant:
    """Mutant `n` of run `seed`: the same bytes every time, whatever ran before it."""
    rng = random.Random(f"{seed}:{n}")  # noqa: S311 (reproducible, not secret)
    base = seeds[rng.randrange(len(seeds))]
    names = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=rng.choice((1, 1, 1, 2, 3)))
    data = base.data
    for name in names:
        data = MUTATIONS[name](data, rng, seeds) or b"\0"
    suffix = base.suffix
    if rng.random() < 0.1:  # a file named for another format (or a JPEG named .dng: LibRaw's)
        suffix = rng.choice(sorted({s.suffix for s in seeds} - {base.suffix}))
        names.append(f"named-{suffix[1:]}")
    return Mutant(n, base.kind, tuple(names), suffix, data)


# -- workers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "skipped", "exception"
    error: str = ""  # the exception's type
    message: str = ""
    where: str = ""  # the innermost frame that raised it
    rss_kib: int = 0


def peak_rss_kib() -> int:
    return status_kib("self", "VmHWM")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{'/'.join(Path(last.filename).parts[-2:])}:{last.lineno} in {last.name}"


def run_one(path: str, plan: Plan) -> Outcome:
    try:
        result = fingerprint_file(path, plan)
    except Exception as exc:
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ != "builtins":
            name = f"{kind.__module__}.{name}"
        return Outcome("exception", name, str(exc)[:200], _where(exc), peak_rss_kib())
    return Outcome("skipped" if isinstance(result, SkipFile) else "ok", rss_kib=peak_rss_kib())


def serve(conn: Connection, plan: Plan, memory_mb: int) -> None:
    """A worker: paths in, outcomes out, until told to stop or its parent is gone."""
    # Pillow's warnings and the native libraries' complaints about bad files are noise here:
    # outcomes are what count (a crash shows in the exit code).
    warnings.simplefilter("ignore")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    if memory_mb:
        # A safety net for the machine, far above the target: a mutant that asks for more gets
        # an allocation failure (an exception, or a crash in native code), and is counted.
        limit = memory_mb * 1_000_000
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _ = plan.instances  # the methods built before the first file's clock starts
    conn.send("ready")
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        conn.send(run_one(path, plan))


class Worker:
    def __init__(self, ctx: Any, plan: Plan, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, plan, memory_mb), daemon=True)
        self.process.start()
        child.close()  # the worker's recv() then ends when this process is gone
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise SystemExit("a fuzz worker did not start")
        self.task: tuple[Mutant, Path] | None = None
        self.deadline = self.started = self.cpu_start = 0.0

    def give(self, item: Mutant, path: Path, timeout: float) -> None:
        self.started = time.monotonic()
        self.task, self.deadline = (item, path), self.started + timeout
        self.cpu_start = cpu_seconds(self.process.pid)
        self.conn.send(str(path))

    def over_time(self, limit: float) -> bool:
        """Past its deadline: over time if it used `limit` seconds of CPU, or waited 4× that.

        CPU time, not the wall clock, because the machine may be busy with other work (a file
        slowed down by its neighbours is not a slow file); the wall-clock backstop catches a
        file that waits rather than works. Otherwise the deadline moves to when the CPU time
        left would be spent at full speed.
        """
        now, used = time.monotonic(), self.cpu_used()
        if used >= limit or now >= self.started + 4 * limit:
            return True
        self.deadline = now + max(0.1, limit - used)
        return False

    def cpu_used(self) -> float:
        """CPU seconds since the task was given: how much of its time the machine's load took."""
        return cpu_seconds(self.process.pid) - self.cpu_start

    def peak_kib(self) -> int:
        return status_kib(self.process.pid or 0, "VmHWM")

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(5)
        self.conn.close()


# -- the run --------------------------------------------------------------------------------


@dataclass
class Tally:
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, list[tuple[Mutant, Outcome, str]]] = field(default_factory=dict)
    bad: dict[str, list[tuple[Mutant, str, str]]] = field(default_factory=dict)  # over time, crash
    peak_kib: int = 0
    peak_at: str = ""  # the mutant that raised the peak
    mutants: int = 0

    def add(self, item: Mutant, status: str) -> None:
        self.by_kind.setdefault(item.kind, Counter())[status] += 1
        self.mutants += 1


def keep(item: Mutant, path: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{item.n:06d}-{item.kind}-{item.label.replace('.', '')}{item.suffix}"
    shutil.copyfile(path, target)
    return str(target)


def run(seeds: Sequence[Seed], plan: Plan, args: Any, work: Path) -> Tally:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dupwatch.fingerprint", "dupwatch.decode", "dupwatch.raw"])
    workers = [Worker(ctx, plan, args.memory_limit) for _ in range(args.workers)]
    todo: Iterator[int] = iter(range(args.count))
    tally, seen = Tally(), set()

    def finish(w: Worker, status: str, outcome: Outcome | None = None, detail: str = "") -> None:
        assert w.task is not None
        item, path = w.task
        w.task = None
        tally.add(item, status)
        rss = outcome.rss_kib if outcome is not None else w.peak_kib()  # a worker killed: from /proc
        if rss > tally.peak_kib:
            tally.peak_kib, tally.peak_at = rss, f"mutant {item.n}, {item.kind} {item.label}"
        if status == "exception" and outcome is not None:
            kept = keep(item, path, args.keep)
            tally.errors.setdefault(outcome.error, []).append((item, outcome, kept))
            if (outcome.error, outcome.where) not in seen:
                seen.add((outcome.error, outcome.where))
                print(f"  new: {outcome.error} at {outcome.where} ({item.kind}, {item.label}): "
                      f"{outcome.message[:100]}", file=sys.stderr)
        elif status in ("over time", "crash"):
            tally.bad.setdefault(status, []).append((item, keep(item, path, args.keep), detail))
        path.unlink(missing_ok=True)
        if tally.mutants % 5000 == 0:
            print(f"  {tally.mutants} of {args.count}", file=sys.stderr)

    try:
        while True:
            for w in workers:
                if w.task is None and (n := next(todo, None)) is not None:
                    item = mutant(seeds, args.seed, n)
                    path = work / f"{n:06d}{item.suffix}"
                    path.write_bytes(item.data)
                    w.give(item, path, args.timeout)
            busy = [w for w in workers if w.task is not None]
            if not busy:
                break
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
            for i, w in enumerate(workers):
                if w.task is None:
                    continue
                if w.conn.poll():
                    try:
                        finish(w, (o := w.conn.recv()).status, o)
                        continue
                    except (EOFError, OSError):
                        pass  # died while answering: a crash, below
                if not w.process.is_alive() or w.conn.closed:
                    w.process.join(1)
                    finish(w, "crash", detail=f"exit code {w.process.exitcode}")
                elif time.monotonic() >= w.deadline:
                    if not w.over_time(args.timeout):
                        continue
                    finish(w, "over time", detail=f"({w.cpu_used():.1f} s of CPU)")
                else:
                    continue
                w.stop(kill=True)
                workers[i] = Worker(ctx, plan, args.memory_limit)
    finally:
        for w in workers:
            w.stop()
    return tally


# -- the report -----------------------------------------------------------------------------


def report(tally: Tally, seconds: float, args: Any) -> dict[str, Any]:
    statuses = ("ok", "skipped", "exception", "over time", "crash")
    print(f"\n{'format':<18}{'mutants':>9}" + "".join(f"{s:>11}" for s in statuses))
    for kind in ENCODERS:
        c = tally.by_kind.get(kind, Counter())
        print(f"{kind:<18}{sum(c.values()):>9}" + "".join(f"{c[s]:>11}" for s in statuses))
    exceptions = sum(len(v) for v in tally.errors.values())
    over, crashes = len(tally.bad.get("over time", [])), len(tally.bad.get("crash", []))
    peak_mb = tally.peak_kib * 1024 / 1e6
    print(f"\nuncaught exceptions: {exceptions} (target 0)")
    for name, hits in sorted(tally.errors.items(), key=lambda kv: -len(kv[1])):
        kinds = Counter(m.kind for m, _, _ in hits)
        mutations = Counter(part for m, _, _ in hits for part in m.mutations)
        wheres = Counter(o.where for _, o, _ in hits)
        print(f"  {name}: {len(hits)}")
        print(f"    formats: {', '.join(f'{k} {v}' for k, v in kinds.most_common())}")
        print(f"    mutations: {', '.join(f'{k} {v}' for k, v in mutations.most_common())}")
        for where, count in wheres.most_common(4):
            item, outcome, kept = next(h for h in hits if h[1].where == where)
            print(f"    {count} at {where}: {outcome.message[:90]!r}\n      e.g. {kept}")
    for status, target in (("over time", f"over {args.timeout:g} s of CPU"), ("crash", "crashed")):
        found = tally.bad.get(status, [])
        print(f"files {target}: {len(found)} (target 0)")
        for item, kept, detail in found[:8]:
            print(f"    {item.kind} {item.label} {detail}: {kept}")
    print(f"peak RSS per worker: {peak_mb:.0f} MB (target ≤ {RSS_TARGET_MB} MB), at {tally.peak_at or '-'}")
    print(f"mutants: {tally.mutants} in {seconds:.1f} s, {tally.mutants / seconds:.1f} mutants/s "
          f"({args.workers} workers, seed {args.seed})")
    return {
        "mutants": tally.mutants, "seconds": round(seconds, 2), "seed": args.seed,
        "per_format": {k: dict(v) for k, v in tally.by_kind.items()},
        "exceptions": {k: len(v) for k, v in tally.errors.items()},
        "over_time": over, "crashes": crashes, "peak_rss_mb": round(peak_mb, 1),
        "passed": exceptions == 0 and over == 0 and crashes == 0 and peak_mb <= RSS_TARGET_MB,
    }


def default_plan(folder: Path) -> Plan:
    """The plan `scan` and `watch` fingerprint with under the default config."""
    store = SqliteStore(folder / "cache.sqlite3")
    try:
        return Pipeline(Config(), store).plan
    finally:
        store.close()


def replay(path: Path) -> int:
    """One file, in this process, so that a traceback shows where it escapes."""
    with tempfile.TemporaryDirectory(prefix="dupwatch-fuzz-") as tmp:
        plan = default_plan(Path(tmp))
    result = fingerprint_file(str(path), plan)
    print(f"skipped: {result.reason}" if isinstance(result, SkipFile) else "ok")
    return 0


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=100_000, help="mutants to run")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} mutants")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed: same seed, same mutants")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="CPU seconds a mutant may take (4× that of wall-clock)")
    parser.add_argument("--originals", type=int, default=4, help="photos to make seeds of")
    parser.add_argument("--keep", type=Path, default=Path("/tmp/dupwatch-fuzz"),
                        help="where mutants that raise, hang or crash are copied")
    parser.add_argument("--memory-limit", type=int, default=3000,
                        help="MB of address space a worker may map (0: no limit)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--replay", type=Path, help="run one file here and show its traceback")
    parser.add_argument("--mutant", type=int, help="write mutant N of --seed to --keep and replay it")
    args = parser.parse_args()
    if args.replay:
        return replay(args.replay)
    if args.mutant is not None:
        item = mutant(make_seeds(args.photos, args.originals), args.seed, args.mutant)
        name = f"mutant-{args.seed}-{item.n}-{item.kind}-{item.label.replace('.', '')}{item.suffix}"
        path = args.keep / name
        args.keep.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)
        print(path)
        return replay(path)
    if args.quick:
        args.count = QUICK_COUNT
    seeds = make_seeds(args.photos, args.originals)
    print(f"{len(seeds)} seeds ({len(ENCODERS)} formats × {len(seeds) // len(ENCODERS)} photos), "
          f"{args.count} mutants, seed {args.seed}, {args.workers} workers, {args.timeout:g} s limit")
    with tempfile.TemporaryDirectory(prefix="dupwatch-fuzz-") as tmp:
        plan = default_plan(Path(tmp))
        start = time.perf_counter()
        tally = run(seeds, plan, args, Path(tmp))
        figures = report(tally, time.perf_counter() - start, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    summary("fuzz: uncaught / over time / crashed", f"{sum(figures['exceptions'].values())} / "
            f"{figures['over_time']} / {figures['crashes']} of {figures['mutants']}",
            f"{figures['peak_rss_mb']:.0f} MB a worker")
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
