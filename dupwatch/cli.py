"""One `main()`: arguments → the pipeline → output; the project's errors → one line and an exit code."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import select
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, get_args

from dupwatch import __version__
from dupwatch import config as configuration
from dupwatch.bench.variants import BENCH_TRANSFORMS, TRANSFORMS
from dupwatch.compare import compare_files
from dupwatch.config import Config
from dupwatch.errors import DupwatchError, ExitCode, SkipFile, UsageError
from dupwatch.extras import install, note_missing
from dupwatch.methods import geometry
from dupwatch.methods.geometry import Geometry
from dupwatch.methods.registry import METHODS
from dupwatch.pipeline import Duplicate, Pipeline, default_workers
from dupwatch.report import (
    Tally,
    duplicate_text,
    geometry_text,
    json_line,
    plural,
    shown,
    skipped_text,
    table,
    turn_text,
)
from dupwatch.sinks import log as notice_log
from dupwatch.sinks.outbox import open_outbox
from dupwatch.store import Catalog, open_store
from dupwatch.store import sqlite as sqlite_store
from dupwatch.store.sqlite import cache_error
from dupwatch.walk import walk

log = logging.getLogger("dupwatch")
if TYPE_CHECKING:
    from dupwatch.quarantine import Quarantine

T = TypeVar("T")

# At the end of a scan, pending notices are sent for at most this long; the rest at the next run.
SCAN_DRAIN_SECONDS = 10.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _log_to_stderr(args.verbose)
    try:
        return int(args.run(args))
    except DupwatchError as exc:
        print(f"dupwatch: {shown(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except sqlite3.Error as exc:
        # Found in use rather than at open (a damaged page is found by the first query that
        # reads it; a disk fills up): here, once, for every command and the service.
        print(f"dupwatch: {shown(str(cache_error(_cache_of(args), exc)))}", file=sys.stderr)
        return int(ExitCode.ERROR)
    except KeyboardInterrupt:
        print("dupwatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if _stdout_closed():
            return int(ExitCode.OK)  # `dupwatch scan ... | head` is not an error
        print(f"dupwatch: a pipe to another process broke: {exc.strerror or exc}", file=sys.stderr)
        return int(ExitCode.ERROR)


def _stdout_closed() -> bool:
    """Whether the reader of stdout went away (a pipe with no reader polls as an error), as
    opposed to some other pipe of this process breaking."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return True  # no stdout to speak of


def _log_to_stderr(verbose: bool) -> None:
    # Plain lines, no timestamps: journald and terminals add their own.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dupwatch: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE",
                        help="config file (default: $DUPWATCH_CONFIG, then the user config dir)")
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    cached = argparse.ArgumentParser(add_help=False)
    cached.add_argument("--cache", type=_cache_arg, metavar="PATH|URL",
                        help="the cache to use: an SQLite file, or a postgresql:// URL (docs/postgres.md)")
    # Switches over the config's keys (robust.enabled, preset) for one run.
    tuned = argparse.ArgumentParser(add_help=False)
    tuned.add_argument("--robust", action="store_true", default=None,
                       help="robust mode for this run: CNN embeddings find copies the hash misses"
                            " (robust.enabled; needs the cnn extra)")
    tuned.add_argument("--preset", choices=get_args(configuration.Preset), metavar="NAME",
                       help="how readily a photo is called a duplicate: strict, normal or loose"
                            " (preset; keys the config sets itself still win)")

    parser = argparse.ArgumentParser(
        prog="dupwatch", description="Find duplicate and near-duplicate photos.",
        epilog="Exit codes: 0 ok, 1 error, 2 bad usage or config, 3 finished but files were skipped.")
    parser.add_argument("--version", action="version", version=f"dupwatch {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND",
                                help="what to do (`dupwatch COMMAND --help` for its options)")

    p = sub.add_parser("scan", parents=[common, cached, tuned], help="index folders and report duplicates")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="folders or photos to scan (default: the config's watch.paths)")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.add_argument("--workers", type=int, metavar="N", help="decoding processes (default: cores)")
    p.set_defaults(run=scan)

    p = sub.add_parser("watch", parents=[common, cached, tuned],
                       help="watch folders and report each duplicate as it lands (a service)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders to watch (default: watch.paths)")
    p.set_defaults(run=watch)

    p = sub.add_parser("notices", parents=[common, cached],
                       help="the duplicates found so far, from the notice log")
    p.add_argument("--since", metavar="DATE",
                   help="only those found since DATE: 2025-06-01, 2025-06-01T09:30, or 90m, 24h, 7d ago")
    p.add_argument("--unreviewed", action="store_true",
                   help="only those neither seen nor marked not a duplicate (on the page, or by ignore)")
    p.add_argument("--group", type=int, metavar="N",
                   help="only the notices of group N (`dupwatch groups`)")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.set_defaults(run=notices)

    p = sub.add_parser("review", parents=[common, cached], help="serve the review page (Ctrl-C stops it)")
    p.add_argument("--bind", metavar="HOST:PORT",
                   help="where to listen (default: review.bind, 127.0.0.1:8765)")
    p.add_argument("--hash-password", action="store_true",
                   help="read a password and print its hash for review.password_hash, then exit")
    p.set_defaults(run=review)

    p = sub.add_parser("ignore", parents=[common, cached],
                       help="mark two photos not a duplicate: that pair is never reported again")
    p.add_argument("a", metavar="PHOTO", help="one photo of the pair")
    p.add_argument("b", metavar="OTHER", help="the other photo")
    p.add_argument("--undo", action="store_true", help="take the decision back")
    p.set_defaults(run=ignore)

    p = sub.add_parser("seen", parents=[common, cached],
                       help="mark notices seen (hidden from the review list)")
    p.add_argument("ids", nargs="+", type=int, metavar="ID", help="notice ids (`dupwatch notices --json`)")
    p.add_argument("--undo", action="store_true", help="show them again")
    p.set_defaults(run=seen)

    p = sub.add_parser("groups", parents=[common, cached],
                       help="every group of copies of one photo: its files, the one to keep and why")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object per group on stdout")
    form.add_argument("--csv", action="store_true", help="one CSV row per file on stdout")
    p.set_defaults(run=groups)

    p = sub.add_parser("keep", parents=[common, cached],
                       help="keep this copy of its group instead of the one dupwatch chose")
    p.add_argument("path", metavar="PATH", help="an indexed file that belongs to a group")
    p.set_defaults(run=keep)

    p = sub.add_parser("resolve", parents=[common, cached],
                       help="move groups' copies into the quarantine folder (actions.enabled; reversible)")
    p.add_argument("groups", nargs="+", type=int, metavar="GROUP", help="group ids (`dupwatch groups`)")
    p.add_argument("--dry-run", action="store_true", help="say what would move, and move nothing")
    p.set_defaults(run=resolve)

    p = sub.add_parser("restore", parents=[common, cached],
                       help="put files back from the quarantine folder where they were")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="the photos to put back, by their old paths (default: every quarantined file)")
    p.set_defaults(run=restore)

    p = sub.add_parser("forget", parents=[common, cached],
                       help="drop files or folders from the cache (the files themselves are not touched)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="indexed files, or folders (all under them)")
    p.set_defaults(run=forget)

    p = sub.add_parser("check", parents=[common, cached],
                       help="check the cache for damage (exit 0 ok, 1 damaged) and say how to rebuild it")
    p.set_defaults(run=check)

    p = sub.add_parser("query", parents=[common, cached, tuned],
                       help="the indexed images most like one image")
    p.add_argument("image", metavar="PHOTO", help="the photo to look for (it is not indexed)")
    p.add_argument("-k", type=int, default=3, metavar="N", help="how many (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    p.set_defaults(run=query)

    p = sub.add_parser("compare", parents=[common], help="every method's score for two images")
    p.add_argument("a", metavar="PHOTO", help="the first photo")
    p.add_argument("b", metavar="OTHER", help="the second photo")
    p.add_argument("--method", default="all", help=f"one of {', '.join(METHODS)}, or all")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=compare)

    p = sub.add_parser("bench", parents=[common],
                       help="the article's experiments on your photos: accuracy, speed, robustness")
    p.add_argument("folder", nargs="?", type=Path, metavar="DIR",
                   help="a folder of distinct photos, only read (default: scikit-image's sample photos)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--plots", type=Path, metavar="OUTDIR", help="write two PNG charts there")
    p.add_argument("--methods", default="all", help=f"comma-separated, of {', '.join(METHODS)} (default all)")
    p.add_argument("--transforms", default="all", help=f"comma-separated, of {', '.join(TRANSFORMS)}"
                   f" (default: {', '.join(BENCH_TRANSFORMS)})")
    p.add_argument("--limit", type=int, metavar="N", help="the first N photos only (sorted by path)")
    p.add_argument("--calls", type=int, default=2300, metavar="N",
                   help="distance calculations in the SciPy/NumPy experiment (default 2300)")
    p.set_defaults(run=bench)
    return parser


def _cache_arg(value: str) -> Path | str:
    """--cache: a postgresql:// URL stays text; anything else is the SQLite file's path."""
    return value if value.startswith(configuration.PG_SCHEMES) else Path(value)


def _config(args: argparse.Namespace) -> Config:
    config = configuration.load(args.config)
    cache = getattr(args, "cache", None)
    if isinstance(cache, str):
        # The database instead of the config's; cache.path still holds the local files.
        config = config.model_copy(update={"cache": config.cache.model_copy(update={"url": cache})})
    elif cache is not None:
        sqlite_file = config.cache.model_copy(update={"path": cache, "url": None})
        config = config.model_copy(update={"cache": sqlite_file})
    preset = getattr(args, "preset", None)
    if preset is not None and preset != config.preset:
        config = _with_preset(config, preset)
    if getattr(args, "robust", None):
        config = config.model_copy(update={"robust": config.robust.model_copy(update={"enabled": True})})
    return config


def _with_preset(config: Config, preset: str) -> Config:
    """`config` under another preset: the keys the old preset filled in are the new one's to fill."""
    data = config.model_dump(exclude_unset=True)
    confirm = {"method": config.confirm.method}
    filled = configuration.with_preset({"preset": config.preset, "confirm": confirm})
    for section, values in filled.items():
        mine = data.get(section)
        if not isinstance(values, dict) or not isinstance(mine, dict):
            continue
        for key, value in values.items():
            # A key the file set to the old preset's very value reads the same as one it left
            # out; either way the new preset's value is what the switch asks for.
            if (section, key) != ("confirm", "method") and mine.get(key) == value:
                del mine[key]
    return configuration.parse({**data, "preset": preset})


def _cache_of(args: argparse.Namespace) -> Path:
    try:
        return _config(args).cache.resolved()
    except DupwatchError:
        cache = getattr(args, "cache", None)
        return configuration.CacheConfig(path=cache if isinstance(cache, Path) else None).resolved()


def scan(args: argparse.Namespace) -> ExitCode:
    config = _config(args)
    selection = config.selection()
    workers = args.workers if args.workers is not None else default_workers(config.scan.workers)
    started = time.monotonic()
    if not args.paths:
        args.paths = [str(p.expanduser()) for p in config.watch.paths]
        if not args.paths:
            raise UsageError("nothing to scan: name folders (dupwatch scan ~/Pictures), or set watch.paths"
                             " in the config")
    paths = list(walk(args.paths, selection, config.scan.follow_symlinks))
    store = open_store(config.cache)
    outbox = open_outbox(config, lambda: open_store(config.cache), wait_for_lock=False)
    outbox.start()
    tally = Tally()
    pipeline: Pipeline | None = None
    try:
        pipeline = Pipeline(config, store)
        out = _Output(args.json, total=len(paths))
        for event in pipeline.ingest(paths, workers):
            tally.add(event)
            if not isinstance(event, Duplicate):  # a file's Indexed, then its Duplicate: one file
                out.progress()
            if isinstance(event, Duplicate):
                out.line(json_line(event.match.to_json()) if args.json else duplicate_text(event))
            elif isinstance(event, SkipFile):
                # One said at an earlier run and unchanged since is counted, not said again.
                log.log(logging.DEBUG if event.told else logging.WARNING, skipped_text(event))
                if args.json:
                    out.line(json_line({"event": "skipped", "path": event.path, "reason": event.reason}))
        out.close()
        seen = {p for p in paths if isinstance(p, str)}
        roots = [str(Path(p).absolute()) for p in args.paths if Path(p).is_dir()]
        forgotten = sum(pipeline.library.forget_missing(root, seen, whole_root=True) for root in roots)
    finally:
        if pipeline is not None:
            pipeline.close()
        store.close()  # commits: the outbox sends only what is committed
        outbox.close(SCAN_DRAIN_SECONDS)
    seconds = time.monotonic() - started
    if args.json:
        print(json_line(tally.record(forgotten, seconds)))
    else:
        log.info(tally.text(forgotten, seconds))
    return ExitCode.SKIPPED if tally.counts["skipped"] else ExitCode.OK


class _Output:
    """Lines on stdout, and a progress bar on stderr only when a person is watching it."""

    def __init__(self, as_json: bool, total: int) -> None:
        self._bar = None
        if sys.stderr.isatty() and not as_json:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False)

    def progress(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def watch(args: argparse.Namespace) -> ExitCode:
    try:  # watchdog is needed by this command only
        from dupwatch.watch.service import Service, use_service_logs
    except ImportError as exc:
        if not (exc.name or "").startswith("watchdog"):
            raise
        raise DupwatchError("dupwatch watch needs watchdog: pip install watchdog") from None

    service = Service(lambda: _config(args), args.paths)  # SIGHUP reloads through the same lookup
    use_service_logs()
    return service.run()


def notices(args: argparse.Namespace) -> ExitCode:
    config = _config(args)
    if not config.notices.log.enabled:
        raise DupwatchError("the notice log is off (notices.log.enabled: false in the config)")
    since = None if args.since is None else parse_since(args.since)
    reviewed: set[int] = set()
    if args.unreviewed:
        store = open_store(config.cache)
        try:
            reviewed = store.reviewed_ids()
        finally:
            store.close()
    found = 0
    for notice in notice_log.read_configured(config, since):
        if notice.id in reviewed or (args.group is not None and notice.match.group != args.group):
            continue
        found += 1
        if args.json:
            print(json_line(notice.to_json()))
        else:
            when = datetime.fromtimestamp(notice.found_at).strftime("%Y-%m-%d %H:%M:%S")
            told = Duplicate(notice.match)
            print(f"{when}  {duplicate_text(told)}{_group_text(told)}")
    if not found and not args.json:
        print(("nothing unreviewed" if args.unreviewed else "no duplicates found")
              + (f" in group {args.group}" if args.group is not None else "")
              + (f" since {args.since}" if args.since else "") + " (the notice log is"
              f" {shown(str(notice_log.configured_path(config)))})")
    return ExitCode.OK


def _group_text(told: Duplicate) -> str:
    """The notice's group and its keeper, on a line of its own below `duplicate_text`; the keeper
    is named unless that text already says it (the new file, or a third copy)."""
    match = told.match
    if match.group is None:
        return ""
    text = f"\n    group {match.group}"
    if match.keep is not None and match.keep == match.match:
        text += f", keep {shown(match.keep)}"
    return text


def review(args: argparse.Namespace) -> ExitCode:
    from dupwatch.review import auth

    if args.hash_password:
        print(auth.hash_password(auth.read_new_password()))
        log.info("put it in the config as review: {password_hash: '...'}")
        return ExitCode.OK
    try:
        from dupwatch.review.server import ReviewServer
    except ImportError as exc:
        raise DupwatchError(f"dupwatch review needs {exc.name}: pip install dupwatch") from None
    server = ReviewServer(_config(args), args.bind)
    try:
        server.serve()
    finally:
        server.close()
    return ExitCode.OK


def ignore(args: argparse.Namespace) -> ExitCode:
    from dupwatch.review.decide import not_duplicate

    config = _config(args)
    a, b = (str(Path(p).absolute()) for p in (args.a, args.b))
    store = open_store(config.cache)
    try:
        hashes = [_content_hash(store, path) for path in (a, b)]
        # Undone, the pair is a duplicate again: its newest notice's XMP tag goes back on, as the
        # page's undo does.
        retag = store.latest_notice(hashes[0], hashes[1]) if args.undo else None
        changed = not_duplicate(store, hashes[0], hashes[1], [(a, b), (b, a)], decided=not args.undo,
                                retag=retag, xmp_enabled=config.notices.xmp.enabled)
    finally:
        store.close()
    if args.undo:
        print(f"{shown(a)} and {shown(b)}: " + ("may be reported as duplicates again" if changed
                                                 else "were not marked not a duplicate"))
    else:
        print(f"{shown(a)} and {shown(b)}: not a duplicate" + ("; never reported again" if changed
                                                               else " (already marked)"))
    return ExitCode.OK


def _content_hash(store: Catalog, path: str) -> bytes:
    """The SHA-256 of a file's bytes: the cache's, while the file is as indexed; else read now."""
    import hashlib
    import os

    try:
        st = os.stat(path)
        known = store.get(path)
        if known is not None and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
            cached = store.content_hash(known.id)
            if cached is not None:
                return cached
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").digest()
    except OSError as exc:
        raise DupwatchError(f"{shown(path)}: {exc.strerror or exc}") from None


def seen(args: argparse.Namespace) -> ExitCode:
    config = _config(args)
    store = open_store(config.cache)
    try:
        missing = [n for n in args.ids if not store.set_seen(n, not args.undo)]
    finally:
        store.close()
    if missing:
        raise DupwatchError(f"no notice {', '.join(map(str, missing))} in the cache")
    return ExitCode.OK


def groups(args: argparse.Namespace) -> ExitCode:
    import csv
    import json

    from dupwatch.library import Library

    config = _config(args)
    store = open_store(config.cache)
    try:
        library = Library(store, [], config.reference_roots(), config.groups.keep)
        found = list(library.keepings())
        library.commit()  # the headers read for the order, so that they are read once
    finally:
        store.close()
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer is not None:
        writer.writerow(["group", "role", "path", "width", "height", "bytes", "format", "why"])
    for k in found:
        rows = [("keep" if i == 0 else "copy", m) for i, m in enumerate(k.members)]
        if writer is not None:
            for role, m in rows:
                writer.writerow([k.id, role, m.path, m.width, m.height, m.size, m.format or "",
                                 k.why if role == "keep" else ""])
        elif args.json:
            print(json.dumps({"group": k.id, "keep": k.members[0].path, "why": k.why, "files": [
                {"path": m.path, "role": role, "width": m.width, "height": m.height, "bytes": m.size,
                 "format": m.format} for role, m in rows]}))
        else:
            best = k.members[0].path
            print(f"group {k.id}: {plural(len(k.members), 'file')}, keep {shown(best)} ({k.why})")
            for role, m in rows:
                print(f"  {role}  {shown(m.path)}  {m.width}×{m.height} {m.format or '?'}"
                      f" {m.size / 1000:,.0f} KB")
    if not found and not args.json and writer is None:
        print("no groups: no duplicates found yet")
    return ExitCode.OK


def keep(args: argparse.Namespace) -> ExitCode:
    from dupwatch.library import Library
    from dupwatch.review.decide import choose_keeper

    config = _config(args)
    path = str(Path(args.path).absolute())
    store = open_store(config.cache)
    try:
        known = store.get(path)
        if known is None:
            raise DupwatchError(f"{shown(path)}: not in the cache (scan it first)")
        library = Library(store, [], config.reference_roots(), config.groups.keep)
        changed = choose_keeper(library, known.id, config.notices.xmp.enabled)
    finally:
        store.close()
    if changed is None:
        raise DupwatchError(f"{shown(path)}: no duplicate of it was found: nothing to keep it over")
    old, new = changed
    print(f"keep {shown(new)}" + (f" instead of {shown(old)}" if old != new else " (already the one kept)"))
    return ExitCode.OK


def _quarantine(config: Config) -> Quarantine:
    from dupwatch import actions

    return actions.quarantine(config)


def resolve(args: argparse.Namespace) -> ExitCode:
    """Each group's copies (never its keeper, never a reference file) go into quarantine."""
    from dupwatch import actions
    from dupwatch.library import Library

    config = _config(args)
    quarantine = _quarantine(config)
    store = open_store(config.cache)
    pipeline = None if args.dry_run else Pipeline(config, store)
    library = pipeline.library if pipeline is not None else Library(store, [], config.reference_roots(),
                                                                      config.groups.keep)
    moved = skipped = 0
    try:
        quarantine.recover()
        for group_id in args.groups:
            keeping = actions.keeping(library, group_id)
            print(f"group {group_id}: keep {shown(keeping.members[0].path)} ({keeping.why})")
            for outcome in actions.resolve(library, quarantine, keeping, args.dry_run):
                if outcome.stays is not None:
                    print(f"  stays {shown(outcome.copy.path)}: {outcome.stays}")
                    skipped += 1
                    continue
                for move in outcome.moves:
                    verb = "would move" if args.dry_run else "moved"
                    if move.kind == "link":
                        verb = "would link" if args.dry_run else "linked"
                    print(f"  {verb} {shown(str(move.src))} → {shown(str(move.dst))}")
                moved += 1
    finally:
        if pipeline is not None:
            pipeline.close()
        store.close()
    what = "would be moved" if args.dry_run else "moved to the quarantine (`dupwatch restore` puts them back)"
    print(f"{plural(moved, 'copy', 'copies')} {what}"
          + (f"; {skipped} left where they are" if skipped else ""))
    return ExitCode.OK


def restore(args: argparse.Namespace) -> ExitCode:
    config = _config(args)
    quarantine = _quarantine(config)
    paths = [Path(os.path.abspath(p)) for p in args.paths] if args.paths else None
    done = quarantine.restore(paths)
    for move in done:
        print(f"restored {shown(str(move.dst))}")
    print(f"{plural(len(done), 'file')} put back; the next scan or the watcher indexes them again"
          " (their duplicates are not told again)")
    return ExitCode.OK


def forget(args: argparse.Namespace) -> ExitCode:
    config = _config(args)
    store = open_store(config.cache)
    pipeline = Pipeline(config, store)  # its searches, so that they and the cache stay in step
    forgotten = 0
    try:
        for given in args.paths:
            path = os.path.abspath(given)
            under = [path] if store.get(path) is not None else list(store.paths_under(path))
            if not under:
                print(f"{shown(path)}: not in the cache", file=sys.stderr)
            for p in under:
                forgotten += pipeline.library.forget(p)
        pipeline.library.commit()
    finally:
        pipeline.close()
        store.close()
    print(f"forgot {plural(forgotten, 'file')}; their duplicates are not told again at the next scan")
    return ExitCode.OK


def check(args: argparse.Namespace) -> ExitCode:
    config = _config(args)
    if config.cache.url is not None:
        return _check_database(config)
    cache = config.cache.resolved()
    health = sqlite_store.check(cache)
    counts = [plural(n, what) for n, what in ((health.files, "file"), (health.notices, "notice"))
              if n is not None]
    schema = "" if health.schema is None else f"schema {health.schema}, "
    print(f"{shown(str(cache))}: {schema}{', '.join(counts) or 'nothing readable'}")
    if not health.problems:
        print("ok")
        return ExitCode.OK
    print("damaged:")
    for problem in health.problems:
        print(f"  {shown(problem)}")
    print(f"To rebuild it: stop `dupwatch watch`, move the cache aside (mv {shown(str(cache))}"
          f" {shown(str(cache))}.damaged) and scan your folders again (or start the watcher: it"
          " catches up). The new cache has no pairs yet, so the duplicates already found are"
          " reported once more (a burst is one summary alert), notice ids start again at 1, and"
          " the review page's marks stay in the old file.")
    return ExitCode.ERROR


def _check_database(config: Config) -> ExitCode:
    """A PostgreSQL cache: reachable, its schema current, and what it holds. Its pages are the
    server's to check (`pg_amcheck`), not dupwatch's."""
    from dupwatch.store.base import ReviewFilter
    from dupwatch.store.postgres import shown_url

    store = open_store(config.cache)
    try:
        files = store.count()
        _, notices = store.review(ReviewFilter(status="all"), 0, 1)
    finally:
        store.close()
    print(f"{shown_url(config.cache.url or '')}: {plural(files, 'file')}, {plural(notices, 'notice')}"
          " (every host's)")
    print("ok (the server checks its own pages: pg_amcheck for a deeper look)")
    return ExitCode.OK


def parse_since(text: str) -> float:
    """An ISO date or time (local unless it says otherwise), or a span back from now: 90m, 24h, 7d."""
    ago = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if ago:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[ago[2]]
        return (datetime.now() - timedelta(**{unit: float(ago[1])})).timestamp()
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(f"--since: not a date, a time or a span like 24h (got {text!r})") from None


def _given(path: str) -> Path:
    """A file named on the command line; one line when there is none, said before anything is
    opened, not as a file that vanished while it was read."""
    if not os.path.exists(path):
        raise DupwatchError(f"{shown(path)}: no such file")
    return Path(path)


def query(args: argparse.Namespace) -> ExitCode:
    if args.k < 1:
        raise DupwatchError("-k must be at least 1")
    image = _given(args.image)
    config = _config(args)
    store = open_store(config.cache)
    try:
        ranked = Pipeline(config, store, saved_index=True).query(str(image.absolute()), args.k)
    finally:
        store.close()
    if args.json:
        for r in ranked:
            print(json_line({"event": "similar", "path": r.path, "score": round(r.score, 4),
                             "method": r.method, "distance": r.distance, "duplicate": r.duplicate}))
    elif not ranked:
        print("no similar image in the index")
    else:
        rows = [["score", "method", "distance", "duplicate", "path"]]
        rows += [[f"{r.score:.3f}", r.method, str(r.distance), "yes" if r.duplicate else "no", shown(r.path)]
                 for r in ranked]
        table(rows, sys.stdout)
    return ExitCode.OK


def compare(args: argparse.Namespace) -> ExitCode:
    if args.method == "all":
        names = tuple(METHODS)
    elif args.method in METHODS:
        names = (args.method,)
    else:
        raise DupwatchError(f"--method: unknown method {args.method!r}; known: {', '.join(METHODS)}, all")
    for path in (args.a, args.b):
        _given(path)
    config = _config(args)
    if args.method == "all" and importlib.util.find_spec("torch") is None:
        names = tuple(n for n in names if not METHODS[n].batched)
        note_missing(log, "cnn, cnn-euclidean: not installed", "cnn")
    if args.method == "all" and not geometry.available():
        names = tuple(n for n in names if n != Geometry.name)
        note_missing(log, "geometry: not installed", "geometry")
    elif args.method == Geometry.name and not geometry.available():
        raise DupwatchError(f"--method geometry needs OpenCV: {install('geometry')}")
    compared = compare_files(args.a, args.b, names, config.method_options(), config.threshold)
    same_bytes, scores = compared.same_bytes, compared.scores
    if args.json:
        print(json_line({"event": "compare", "a": args.a, "b": args.b, "same_bytes": same_bytes,
                         "turned": dict(zip(("a", "b"), compared.turned, strict=True)),
                         "exact_only": dict(zip(("a", "b"), compared.exact_only, strict=True)),
                         "shots_apart": compared.apart,
                         "closer": None if compared.closer is None else round(compared.closer, 3),
                         "scores": {s.method: {"score": round(s.score, 4), "threshold": s.threshold,
                                               "duplicate": s.duplicate, "distance": s.distance,
                                               **({"geometry": s.geometry} if s.geometry else {})}
                                    for s in scores}}))
        return ExitCode.OK
    print(f"same bytes: {'yes' if same_bytes else 'no'}")
    for path, turned in zip((args.a, args.b), compared.turned, strict=True):
        if turned:
            print(f"{shown(path)}: {turn_text(turned)} on a canvas; turned back and cut out first")
    for path, reason in zip((args.a, args.b), compared.exact_only, strict=True):
        if reason is not None:
            print(f"{shown(path)}: {reason}; only its exact copies are looked for")
    if compared.apart is not None and not same_bytes:
        print(f"two shots: one camera took them {compared.apart:g} s apart (EXIF); never reported as"
              " duplicates, whatever the scores (candidates.report_other_shots)")
    if compared.closer is not None:
        print(f"a closer look (one photo is plain but for one patch): their fine detail agrees at"
              f" {compared.closer:.2f} outside the patch they share"
              + ("; not a copy, whatever the cosine says" if any(s.apart for s in scores) else ""))
    rows = [["method", "score", "threshold", "duplicate", "distance"]]
    rows += [[s.method, f"{s.score:.3f}", f"{s.threshold:.2f}", "yes" if s.duplicate else "no",
              "" if s.distance is None else str(s.distance)] for s in scores]
    table(rows, sys.stdout)
    for s in scores:
        if s.geometry is not None:
            print(geometry_text(s.geometry))
    return ExitCode.OK


def bench(args: argparse.Namespace) -> ExitCode:
    from dupwatch.bench import experiments, plots, report
    from dupwatch.bench.samples import sample_photos
    from dupwatch.bench.variants import photo_paths

    methods = _names(args.methods, "--methods", METHODS, tuple(METHODS))
    transforms = _names(args.transforms, "--transforms", TRANSFORMS, tuple(BENCH_TRANSFORMS))
    for option, value in (("--limit", args.limit), ("--calls", args.calls)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be at least 1")
    needed = ["scipy", *(["matplotlib"] if args.plots else [])]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise DupwatchError(f"dupwatch bench needs {' and '.join(missing)}: {install('bench')}")
    notes = []
    if importlib.util.find_spec("torch") is None:
        cnn = [name for name in methods if METHODS[name].batched]
        if cnn and args.methods != "all":
            raise DupwatchError(f"{', '.join(cnn)} need{'s' if len(cnn) == 1 else ''} torch:"
                                f" {install('cnn')}")
        if cnn:
            notes.append(f"{', '.join(cnn)}: left out, torch is not installed ({install('cnn')})")
            methods = tuple(name for name in methods if name not in cnn)
    if args.folder is None:
        originals = sample_photos()
    elif args.folder.is_dir():
        originals = photo_paths(args.folder)
    else:
        raise DupwatchError(f"{shown(str(args.folder))}: not a folder")
    originals = originals[:args.limit]
    options = _config(args).method_options()
    with tempfile.TemporaryDirectory(prefix="dupwatch-bench-") as work:
        results = experiments.run(originals, methods, transforms, Path(work), options, _bar, args.calls)
    results.notes[:0] = notes
    for skip in results.skipped:
        log.warning(skipped_text(skip))
    try:
        written = plots.write(results, args.plots) if args.plots else []
    except OSError as exc:
        raise DupwatchError(f"--plots {shown(str(args.plots))}: {exc.strerror or exc}") from None
    if args.json:
        print(json_line({"event": "bench", **report.to_json(results), "plots": [str(p) for p in written]}))
    else:
        print(report.markdown(results), end="")
        for path in written:
            log.info(f"chart written: {shown(str(path))}")
    return ExitCode.SKIPPED if results.skipped else ExitCode.OK


def _names(text: str, option: str, known: Mapping[str, object], default: tuple[str, ...]) -> tuple[str, ...]:
    if text == "all":
        return default
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"{option}: unknown {', '.join(map(repr, unknown)) or 'empty list'};"
                         f" known: {', '.join(known)}, all")
    return names


def _bar(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    """A progress bar on stderr when a person is watching it; nothing in a pipe or a log."""
    if not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    bar: Iterable[T] = tqdm(items, total=total, desc=description, file=sys.stderr, leave=False)
    return bar
