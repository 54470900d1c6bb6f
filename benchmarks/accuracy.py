"""Recall per transform and false pairs, with the default settings, on real photos.

For each transform, a fresh cache holds the original photos; the transformed copies are then
ingested through the same pipeline as `dupwatch scan`. A copy counts as found when its match is
its own original; a match to any other photo is a false pair.

    python benchmarks/accuracy.py [--photos DIR] [--json] [--hard] [--config FILE] [--only A,B] [--alone]
        [--layouts]
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import arguments, summary
from dupwatch import config as configuration
from dupwatch.bench import layouts
from dupwatch.bench.variants import (
    CORE_TRANSFORMS,
    EDIT_TRANSFORMS,
    HARD_TRANSFORMS,
    photo_paths,
    robust_target,
    target,
    write_variants,
)
from dupwatch.config import Config
from dupwatch.pipeline import Duplicate, Event, Pipeline
from dupwatch.store.sqlite import SqliteStore


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--hard", action="store_true", help="also the edits robust mode is for")
    parser.add_argument("--config", type=Path, help="a dupwatch config (default: the built-in defaults)")
    parser.add_argument("--only", help="comma-separated transforms to run (default: all)")
    parser.add_argument("--alone", action="store_true",
                        help="each copy lands alone in a library of the originals (instead of all the"
                             " copies of a transform scanned together, which then crowd each other)")
    parser.add_argument("--layouts", action="store_true",
                        help="add generated originals that share a layout or sit near black or white"
                             " (dupwatch/bench/layouts.py), their copies too, in place of the photos"
                             " they were made from; report them apart")
    args = parser.parse_args()
    originals = photo_paths(args.photos)
    transforms = {**CORE_TRANSFORMS, **EDIT_TRANSFORMS, **(HARD_TRANSFORMS if args.hard else {})}
    if args.only:
        transforms = {name: transforms[name] for name in args.only.split(",")}
    variants_dir = args.work / "variants"
    made = layouts.write_layouts(originals, args.work / "layouts") if args.layouts else []
    # A photo a layout was made from leaves the originals: a darkened photo IS an edit of it.
    originals = [p for p in originals if p.stem not in {m.source for m in made}]
    copied = [*originals, *(m.path for m in made if m.variants)]
    variants = list(write_variants(copied, variants_dir, transforms))
    originals += [m.path for m in made]
    config = configuration.load_file(args.config) if args.config else Config()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = _store(Path(tmp) / "originals.db")
        pipeline = Pipeline(config, base)
        among_originals = [e.match for e in pipeline.ingest(map(str, originals), workers=2)
                           if isinstance(e, Duplicate)]
        pipeline.close()  # its workers end here, not in the interpreter's exit
        base.close()
        for name in transforms:
            db = Path(tmp) / f"{name}.db"
            db.write_bytes((Path(tmp) / "originals.db").read_bytes())
            store = _store(db)
            batch = [v for v in variants if v.transform == name]
            source = {str(v.path): v.source for v in batch}
            found = wrong = 0
            pipeline = Pipeline(config, store)
            for event in _alone(config, db, list(source)) if args.alone else \
                    pipeline.ingest(list(source), workers=2):
                if isinstance(event, Duplicate):
                    if Path(event.match.match).stem == source[event.match.path]:
                        found += 1
                    else:
                        wrong += 1
                        m = event.match
                        print(f"false pair ({name}): {Path(m.path).name} ~ {Path(m.match).name}"
                              f" {m.method} {m.score:.3f} {m.transform or ''} {m.geometry or ''}",
                              file=sys.stderr)
            pipeline.close()
            store.close()
            rows.append(Row(name, len(batch), found, wrong,
                            robust_target(name) if config.robust.enabled else target(name)))
        for m in among_originals:
            print(f"false pair (originals): {layouts.describe(m)}", file=sys.stderr)
        if made and not args.alone:  # reads back the pairs each transform's library recorded
            libraries = {name: Path(tmp) / f"{name}.db" for name in transforms}
            text = layouts.report(made, variants, among_originals, libraries)
            print(text, file=sys.stderr if args.json else sys.stdout)
    false_total = len(among_originals) + sum(r.false for r in rows)
    if args.json:
        print(json.dumps({"photos": len(originals), "false_pairs_among_originals": len(among_originals),
                          "false_pairs_total": false_total,
                          "transforms": [{**asdict(r), "recall": r.recall} for r in rows]}, indent=2))
    else:
        print(f"{len(originals)} distinct photos; false pairs among them: {len(among_originals)}")
        print("| transform | copies | found | false pairs | recall | target |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            wanted = "" if r.target is None else f"≥ {r.target}"
            print(f"| {r.transform} | {r.copies} | {r.found} | {r.false} | {r.recall:.3f} | {wanted} |")
    missed = [r for r in rows if r.target is not None and r.recall < r.target]
    core = [r for r in rows if r.target is not None]
    if core:
        mode = "robust mode" if config.robust.enabled else "default settings"
        summary(f"accuracy, {mode}, {len(core)} edits of {len(originals)} photos",
                f"recall {min(r.recall for r in core):.3f}–{max(r.recall for r in core):.3f};"
                f" {false_total} false pairs; {len(missed)} under target")
    return 1 if missed or len(among_originals) else 0


@dataclass(frozen=True)
class Row:
    transform: str
    copies: int
    found: int
    false: int  # matched to a different photo
    target: float | None

    @property
    def recall(self) -> float:
        return round(self.found / self.copies, 3)


def _alone(config: Config, library: Path, paths: list[str]) -> Iterator[Event]:
    """Each path scanned into its own copy of the library: a photo that lands among originals."""
    for path in paths:
        single = library.with_suffix(".alone.db")
        single.write_bytes(library.read_bytes())
        store = _store(single)
        pipeline = Pipeline(config, store)
        yield from pipeline.ingest([path], workers=1)
        pipeline.close()
        store.close()
        single.unlink()


def _store(path: Path) -> SqliteStore:
    return SqliteStore(path)


if __name__ == "__main__":
    raise SystemExit(main())
