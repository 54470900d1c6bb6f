"""Groups made of every kind of copy, landing in every order: found whole, the same keeper.

    python benchmarks/keepers.py [--photos DIR] [--count 24] [--orders 4] [--work DIR]

Each of `--count` shared photos (the Kodak PNGs first: lossless originals) becomes one group: the
photo itself, as a lossless PNG, and its copies (`COPIES`: a JPEG of it at quality 95 and at 50,
a WebP, a half-size export, a 5 % crop, a phone's turned copy with its EXIF tag, a caption, a
copy padded to a square). Every file of every group lands in one library through the
pipeline, as a scan or the watcher lands them, in `--orders` random orders, each into a fresh
cache. For each order and
each group the benchmark counts: the group found whole (all its files in one group, no file of
another group in it); its keeper the original; each copy told once; no keeper ever tagged (the
file a notice marks as the copy is never the group's keeper at the end); and every notice one
hop from the keeper (a copy is told against the keeper, not against another copy). An upscaled
copy is left out: it has more pixels than its original, and the keeper order puts pixels first.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from benchmarks.common import arguments, summary
from dupwatch.bench.variants import TRANSFORMS, photo_paths
from dupwatch.config import CacheConfig, Config
from dupwatch.pipeline import Duplicate, Pipeline
from dupwatch.record import Match
from dupwatch.store import open_store

# "copy" writes a JPEG at quality 95 here: the accuracy benchmark replaces it by a byte copy.
COPIES = ("copy", "jpeg-q50", "webp", "resize-50", "crop-5", "exif-rot90", "caption", "pad-white")


def groups(photos: list[Path], folder: Path) -> dict[str, list[Path]]:
    """Each photo as a lossless original beside its copies, by the photo's name."""
    out: dict[str, list[Path]] = {}
    for photo in photos:
        with Image.open(photo) as im:
            image = im.convert("RGB")
        if max(image.size) > 1024:  # a phone's export size: the copies are what matters
            image.thumbnail((1024, 1024), Image.Resampling.LANCZOS)
        original = folder / f"{photo.stem}.orig.png"
        image.save(original)
        members = [original]
        for name in COPIES:
            suffix, data = TRANSFORMS[name](image)
            path = folder / f"{photo.stem}.{name}{suffix}"
            path.write_bytes(data)
            members.append(path)
        out[photo.stem] = members
    return out


def tagged(match: Match) -> str:
    """The file a notice marks as the copy (the XMP tag, the sidecar)."""
    return match.match if match.better() else match.path


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=24, help="photos, one group each")
    parser.add_argument("--orders", type=int, default=4, help="random orders of arrival")
    args = parser.parse_args()
    photos = photo_paths(args.photos)[: args.count]
    folder = args.work / "keepers"
    folder.mkdir(parents=True, exist_ok=True)
    made = groups(photos, folder)
    files = [p for members in made.values() for p in members]
    source = {str(p): stem for stem, members in made.items() for p in members}
    print(f"{len(made)} groups of {len(COPIES) + 1} files ({', '.join(COPIES)} and the original),"
          f" {len(files)} files, {args.orders} orders of arrival")
    failures: dict[str, int] = {"not whole": 0, "keeper not the original": 0, "a copy told twice or never": 0,
                                "a keeper tagged": 0, "more than one hop": 0}
    keepers: dict[str, set[str]] = {stem: set() for stem in made}
    started = time.perf_counter()
    rng = random.Random(15)  # noqa: S311  (an order of arrival, not a secret)
    for _ in range(args.orders):
        order = files[:]
        rng.shuffle(order)
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(CacheConfig(path=Path(tmp) / "cache.db"))
            pipeline = Pipeline(Config(), store)
            try:
                told = [e.match for e in pipeline.ingest([str(p) for p in order], workers=2)
                        if isinstance(e, Duplicate)]
                for stem, members in made.items():
                    known = [store.get(str(p)) for p in members]
                    ids = {store.group_of(k.id) for k in known if k is not None}
                    group_id = next(iter(ids)) if len(ids) == 1 else None
                    kept = None if group_id is None else pipeline.library.keeping(group_id)
                    whole = kept is not None and {m.path for m in kept.members} == {str(p) for p in members}
                    failures["not whole"] += not whole
                    if not whole:
                        apart = sorted(f"{p.name}: group {store.group_of(k.id) if k else None}"
                                       for p, k in zip(members, known, strict=True))
                        print(f"  {stem}: not whole: {'; '.join(apart)}")
                    if kept is None:
                        continue
                    keeper = kept.members[0].path
                    keepers[stem].add(keeper)
                    failures["keeper not the original"] += keeper != str(members[0])
                    if keeper != str(members[0]) or not whole:
                        print(f"  {stem}: keeper {Path(keeper).name} ({kept.why});"
                              f" {'whole' if whole else 'not whole: ' + str(len(kept.members)) + ' files'}")
                    mine = [m for m in told if source.get(m.path) == stem]
                    failures["a copy told twice or never"] += len(mine) != len(members) - 1
                    failures["a keeper tagged"] += sum(tagged(m) == keeper for m in mine)
                    hops = [m for m in mine if not m.better() and m.match != m.keep]
                    failures["more than one hop"] += len(hops)
                    for m in hops:
                        print(f"  {stem}: {Path(m.path).name} told against {Path(m.match).name},"
                              f" its keeper then {Path(m.keep or '').name}")
            finally:
                pipeline.close()
                store.close()
    seconds = time.perf_counter() - started
    stable = sum(len(k) == 1 for k in keepers.values())
    checks = len(made) * args.orders
    print(f"{checks} group landings in {seconds:.0f} s; keeper the same in every order for {stable} of"
          f" {len(made)} groups")
    for what, n in failures.items():
        print(f"  {what}: {n}")
    summary("groups of every kind of copy, in random orders",
            f"{checks - failures['not whole']} of {checks} whole; keeper the same in every order"
            f" {stable}/{len(made)}; keepers tagged {failures['a keeper tagged']}; chains"
            f" {failures['more than one hop']}")
    return 1 if any(failures.values()) or stable < len(made) else 0


if __name__ == "__main__":
    raise SystemExit(main())
