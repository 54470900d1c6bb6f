"""Other captures of one scene: how many pairs of real multi-view shots are called duplicates.

A duplicate finder reports copies of one capture (an edit: re-encoded, resized, cropped, turned,
retouched), not other shots of the same place. Here each scene is a folder of real photos of one
building taken from different positions (Strecha's fountain, Herz-Jesus, entry and castle sets and
openMVG's Sceaux castle); none of their pairs is a duplicate.

For each scene a fresh cache holds its photos (as `dupwatch scan` leaves it) and every photo is
then asked for (`Pipeline.query`, the decision `dupwatch query` and a new file's ingest make) with
the whole scene as candidates: an unordered pair counts as called a duplicate when either photo's
query calls the other one. A plain `dupwatch scan` of the scene folders (one process, as a user
runs it) is counted too: the pairs it reports.

    python benchmarks/captures.py [--captures DIR] [--config FILE] [--json]

`--captures` is a folder of scene folders. When it does not exist it is built from the git mirrors
of openMVG's datasets, if they are on this machine (`/work/.mirror`); otherwise this says how
to make one and exits 0. The photos are never part of the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import summary
from dupwatch import config as configuration
from dupwatch.bench.variants import photo_paths
from dupwatch.config import Config
from dupwatch.pipeline import Pipeline
from dupwatch.store.sqlite import SqliteStore

MIRRORS = Path(os.environ.get("DUPWATCH_MIRRORS", "/work/.mirror"))
STRECHA = ("openMVG+SfM_quality_evaluation", "Benchmarking_Camera_Calibration_2008")
# Set folder -> scene: castle-P19 is part of castle-P30 and Herz-Jesus-P8 of P25 (the same files).
STRECHA_SETS = {"fountain-P11": "fountain", "Herz-Jesus-P8": "herz-jesus", "Herz-Jesus-P25": "herz-jesus",
                "entry-P10": "entry", "castle-P19": "castle", "castle-P30": "castle"}
SCEAUX = ("openMVG+ImageDataset_SceauxCastle", "images")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--captures", type=Path, default=Path("/tmp/dupwatch-bench/captures"),
                        help="a folder of scene folders, each holding other shots of one scene")
    parser.add_argument("--config", type=Path, help="a dupwatch config (default: the built-in defaults)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-scan", action="store_true", help="skip the `dupwatch scan` count")
    args = parser.parse_args()
    if not args.captures.exists() and not build(args.captures):
        print(f"no multi-view photos: {args.captures} does not exist and the mirrors of openMVG's"
              f" SfM_quality_evaluation and ImageDataset_SceauxCastle are not under {MIRRORS}.\n"
              "Make one sub-folder per scene, holding real photos of that place taken from"
              " different positions (or a burst), and pass it as --captures.")
        return 0
    scenes = sorted(p for p in args.captures.iterdir() if p.is_dir() and photo_paths(p))
    config = configuration.load_file(args.config) if args.config else Config()
    mode = "robust mode" if config.robust.enabled else "default settings"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scene in scenes:
            rows.append(measure(scene, config, Path(tmp), args.config, not args.no_scan))
    total = Row("all", sum(r.photos for r in rows), sum(r.pairs for r in rows),
                sum(r.queried for r in rows), sum(r.scanned for r in rows), sum(r.seconds for r in rows))
    if args.json:
        print(json.dumps({"mode": mode, "scenes": [asdict(r) for r in [*rows, total]]}, indent=2))
    else:
        print(f"other captures of one scene, {mode}")
        print("| scene | photos | pairs | called duplicates (query) | reported by scan | seconds |")
        print("|---|---|---|---|---|---|")
        for r in [*rows, total]:
            print(f"| {r.scene} | {r.photos} | {r.pairs} | {r.queried} ({r.share:.1%}) | {r.scanned} |"
                  f" {r.seconds:.0f} |")
    summary(f"other captures, {mode}, {total.pairs} pairs of {len(rows)} scenes",
            f"{total.queried} called duplicates ({total.share:.1%}); scan reported {total.scanned}")
    return 0


@dataclass(frozen=True)
class Row:
    scene: str
    photos: int
    pairs: int
    queried: int  # pairs that either photo's query called duplicates
    scanned: int  # pairs `dupwatch scan` reported
    seconds: float

    @property
    def share(self) -> float:
        return self.queried / self.pairs if self.pairs else 0.0


def measure(scene: Path, config: Config, tmp: Path, config_file: Path | None, scan: bool) -> Row:
    started = time.perf_counter()
    photos = [str(p) for p in photo_paths(scene)]
    store = SqliteStore(tmp / f"{scene.name}.db")
    pipeline = Pipeline(config, store)
    for _ in pipeline.ingest(photos, workers=2):
        pass
    called: set[frozenset[str]] = set()
    for path in photos:
        for c in pipeline.query(path, len(photos)):
            if c.duplicate and c.path != path:
                called.add(frozenset((path, c.path)))
                print(f"{scene.name}: {Path(path).name} ~ {Path(c.path).name} {c.method} {c.score:.3f}"
                      f" {c.geometry or ''}", file=sys.stderr)
    pipeline.close()
    store.close()
    scanned = _scan(scene, tmp, config_file) if scan else 0
    pairs = len(list(itertools.combinations(photos, 2)))
    return Row(scene.name, len(photos), pairs, len(called), scanned, time.perf_counter() - started)


def _scan(scene: Path, tmp: Path, config_file: Path | None) -> int:
    """Pairs a plain `dupwatch scan` of the scene's folder reports (a fresh cache)."""
    cache = tmp / f"{scene.name}.scan.db"
    command = [sys.executable, "-m", "dupwatch", "scan", "--json", "--cache", str(cache), "--workers", "2"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    else:  # the built-in defaults, whatever the user's own config says
        empty = tmp / "defaults.yaml"
        empty.write_text("{}\n", encoding="utf-8")
        command += ["--config", str(empty)]
    done = subprocess.run([*command, str(scene)], capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"dupwatch scan failed ({done.returncode}): {done.stderr.strip()}")
    pairs = set()
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if record.get("event") == "duplicate":
            pairs.add(frozenset((record["path"], record["match"])))
    return len(pairs)


def build(out: Path) -> bool:
    """Scene folders from the openMVG dataset mirrors; False when neither mirror is here."""
    strecha, sceaux = MIRRORS / STRECHA[0] / "repo", MIRRORS / SCEAUX[0] / "repo"
    if not strecha.exists() and not sceaux.exists():
        return False
    seen: set[str] = set()
    if strecha.exists():
        for folder, scene in STRECHA_SETS.items():
            _extract(strecha, f"{STRECHA[1]}/{folder}/images", out / scene, seen)
    if sceaux.exists():
        _extract(sceaux, SCEAUX[1], out / "sceaux", seen)
    return True


def _extract(repo: Path, path: str, target: Path, seen: set[str]) -> None:
    """The photos under `path` at the mirror's HEAD into `target`, each distinct file once."""
    done = subprocess.run(["git", "-C", str(repo), "archive", "HEAD", path], capture_output=True, check=False)
    if done.returncode != 0:
        print(f"skipped {repo}:{path}: {done.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        for member in tar.getmembers():
            if not member.isfile() or Path(member.name).suffix.lower() not in {".jpg", ".jpeg", ".png"}:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = handle.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:  # the smaller Strecha sets repeat the larger ones' files
                continue
            seen.add(digest)
            name = target / Path(member.name).name
            if name.exists():  # another set of the same scene, another file of the same name
                name = target / f"{Path(member.name).parent.parent.name}-{name.name}"
            name.write_bytes(data)


if __name__ == "__main__":
    raise SystemExit(main())
