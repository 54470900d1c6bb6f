"""The config: YAML → a frozen, validated tree. Every error names the dotted key that is wrong.

Lookup order: `--config FILE`, then `$DUPWATCH_CONFIG`, then `config.yaml` in the user config
dir (platformdirs), then the built-in defaults. `config.example.yaml` documents every key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import string
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dupwatch.errors import ConfigError
from dupwatch.methods.base import Method, Options
from dupwatch.methods.registry import METHODS
from dupwatch.raw import RAW_SUFFIXES
from dupwatch.walk import Selection

APP = "dupwatch"
ENV_CONFIG = "DUPWATCH_CONFIG"

DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp",
                      ".heic", ".heif", *RAW_SUFFIXES)
# Names that are never photos yet: partial downloads, sync tools' temporary files, hidden files.
DEFAULT_IGNORE = (".*", "*.part", "*.crdownload", "*.tmp", "*.temp", "~*", "*.partial",
                  "*.!sync", "*.syncthing.*")


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


PG_SCHEMES = ("postgresql://", "postgres://")


class CacheConfig(Section):
    # The SQLite cache; with `url` set, the folder of the files kept beside it (the review key,
    # thumbnails, the notice log and its lock), which stay local to each host.
    path: Path | None = None  # None: <user cache dir>/index.sqlite3
    # A shared PostgreSQL database instead of the SQLite file (docs/postgres.md).
    url: str | None = None
    # This machine's name in a shared database: a file is known by (host, path). None: the
    # machine's host name.
    host: str | None = None

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(PG_SCHEMES):
            raise ValueError("must be a postgresql:// URL (postgresql://user@server/database)")
        return value

    @field_validator("host")
    @classmethod
    def _host_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value != value.strip() or ":" in value):
            raise ValueError(f"not a host name: {quoted(value)} (no spaces at its ends, no ':')")
        return value

    def resolved(self) -> Path:
        if self.path is not None:
            return self.path.expanduser()
        return Path(platformdirs.user_cache_dir(APP)) / "index.sqlite3"


class ScanConfig(Section):
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    follow_symlinks: bool = False
    workers: int = Field(0, ge=0)  # 0: one per CPU core
    max_file_mb: int = Field(300, ge=1)  # larger files are skipped unread

    @field_validator("extensions")
    @classmethod
    def _dotted_lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for ext in value:
            ext = ext.strip().lower()
            if not ext or "/" in ext:
                raise ValueError(f"not a file extension: {quoted(ext)}")
            out.append(ext if ext.startswith(".") else "." + ext)
        return tuple(out)


HashName = Literal["chash", "hash", "phash", "dhash", "whash"]


class CandidatesConfig(Section):
    hash: HashName = "chash"
    max_distance: int = Field(20, ge=0, le=64)
    limit: int = Field(64, ge=1)  # at most this many nearest candidates are confirmed
    dihedral: bool = True  # also look for copies turned by 90°/180° or mirrored
    # A camera's RAW+JPEG pair (IMG_0001.CR2 beside IMG_0001.JPG) is one shot, not a duplicate.
    report_raw_siblings: bool = False
    # Two photos one camera took at different moments (EXIF: a burst, a second try) are two
    # shots, not a duplicate, however alike their pixels (`shots.py`).
    report_other_shots: bool = False

    @model_validator(mode="after")
    def _dihedral_needs_a_grid_hash(self) -> CandidatesConfig:
        if self.dihedral and self.hash not in ("chash", "hash"):
            # dhash, phash and whash bits do not turn with the photo; a grid of block means does.
            raise ValueError("candidates.dihedral needs candidates.hash: chash or hash")
        return self


class RobustConfig(Section):
    enabled: bool = False  # CNN embeddings find candidates the hash misses (needs dupwatch[cnn])
    k: int = Field(5, ge=1, le=100)  # nearest embeddings looked at per photo
    threshold: float = Field(0.85, ge=0.0, le=1.0)  # CNN cosine a neighbour needs
    index: Literal["auto", "numpy", "usearch", "codes"] = "auto"


class GeometryConfig(Section):
    # auto: on when OpenCV is installed (dupwatch[geometry], part of dupwatch[cnn]).
    enabled: bool | Literal["auto"] = "auto"
    threshold: float = Field(0.5, ge=0.0, le=1.0)  # geometry score that confirms a grey-zone pair
    checks: int = Field(5, ge=1, le=100)  # grey-zone candidates verified per photo, at most
    # The grey zone of each cheap score: a candidate scoring from here up to that score's own
    # threshold (confirm.threshold, robust.threshold) is verified by geometry; below, rejected.
    verify_from: dict[str, float] = Field(default_factory=lambda: {"cosine": 0.85, "cnn": 0.35})

    @field_validator("verify_from")
    @classmethod
    def _scores(cls, value: dict[str, float]) -> dict[str, float]:
        for name, score in value.items():
            if name not in METHODS:
                raise ValueError(f"unknown method {quoted(name)}; known: {', '.join(METHODS)}")
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"{name}: a score in [0, 1] (got {score!r})")
        return value


class ConfirmConfig(Section):
    method: str = "cosine"
    threshold: float | None = Field(None, ge=0.0, le=1.0)  # None: the method's default

    @field_validator("method")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown method {quoted(value)}; known: {', '.join(METHODS)}")
        return value

    def resolved_threshold(self) -> float:
        return self.threshold if self.threshold is not None else METHODS[self.method].default_threshold


class CnnConfig(Section):
    model: Literal["lite0", "b0"] = "lite0"
    weights: Path | None = None  # None: lite0's packaged weights; b0's download when online
    batch_size: int = Field(16, ge=1, le=256)


class WatchConfig(Section):
    paths: tuple[Path, ...] = ()  # folders `dupwatch watch` watches; PATH arguments replace them
    settle_seconds: float = Field(1.0, ge=0.0)  # quiet time before a written file is read
    polling: tuple[Path, ...] = ()  # watched folders (or folders above them) to poll: network mounts
    # A poll lists the whole tree: a floor keeps a typo from turning it into a busy loop.
    poll_interval: float = Field(5.0, ge=0.1)


class LogSinkConfig(Section):
    enabled: bool = True
    path: Path | None = None  # None: the cache's own log in <user log dir>, see resolved()
    max_bytes: int = Field(10_000_000, ge=10_000)  # rotated past this size
    backups: int = Field(5, ge=1, le=100)  # rotated files kept: notices.jsonl.1, .2, ...

    def resolved(self, cache: CacheConfig) -> Path:
        """The notice log of `cache`: the one place every reader and writer finds it.

        Notice ids are numbered by each cache, so two caches sharing one log would hide each
        other's notices. The default cache keeps `notices.jsonl`, where existing installs have
        their history; any other cache gets `notices-<its identity>.jsonl` beside it. A path
        set in the config is used as given (its lines carry the cache identity, see
        `sinks/log.py`).
        """
        if self.path is not None:
            return self.path.expanduser()
        folder = Path(platformdirs.user_log_dir(APP))
        if cache.url is None and LogSinkConfig.real(cache) == LogSinkConfig.real(CacheConfig()):
            return folder / "notices.jsonl"
        return folder / f"notices-{self.cache_identity(cache)}.jsonl"

    @staticmethod
    def cache_identity(cache: CacheConfig) -> str:
        """A short digest naming one cache, stable across runs: of the SQLite file's
        absolute path (symbolic links followed), or of the PostgreSQL URL without its password
        (the same on every host; a changed password must not orphan the log)."""
        if cache.url is not None:
            named = "pg:" + LogSinkConfig.without_password(cache.url)
        else:
            named = "sqlite:" + LogSinkConfig.real(cache)
        return hashlib.sha256(os.fsencode(named)).hexdigest()[:12]

    @staticmethod
    def real(cache: CacheConfig) -> str:
        # os.path.realpath, not Path.resolve: a symlink loop or a file in the way is the store's
        # to report in its own words, never a traceback here.
        return os.path.realpath(cache.resolved())

    @staticmethod
    def without_password(url: str) -> str:
        """postgresql://user:secret@server/db?password=x → postgresql://user@server/db; postgres://
        and postgresql:// name the same database."""
        parts = urlsplit(url)
        user, at, server = parts.netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{server}" if at else server
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                           if k != "password"])
        return urlunsplit(("postgresql", netloc, parts.path, query, ""))


class SidecarSinkConfig(Section):
    enabled: bool = False
    # state: <user state dir>/sidecars/<the photo's absolute path>.json, out of every photo
    # manager's sight; folder: .dupwatch/<photo name>.json beside the photo (needs write access).
    where: Literal["state", "folder"] = "state"

    def root(self) -> Path:
        return Path(platformdirs.user_state_dir(APP)) / "sidecars"


class XmpSinkConfig(Section):
    enabled: bool = False  # opt-in: tag the duplicate in its IMG_0001.JPG.xmp sidecar


def _apprise_url(url: str) -> str:
    import apprise  # only when URLs are configured: it takes a while to import

    quiet = logging.getLogger("apprise")
    level, quiet.level = quiet.level, logging.CRITICAL  # its own "Unparseable URL" line: ours says it
    try:
        known = apprise.Apprise().add(url)
    finally:
        quiet.setLevel(level)
    if not known:
        scheme = url.split("://", 1)[0] if "://" in url else url[:20]
        raise ValueError(f"not a URL Apprise can send to (scheme {quoted(scheme)}; see"
                         f" https://github.com/caronc/apprise/wiki)")
    return url


class AppriseSinkConfig(Section):
    # One Apprise URL per target: ntfy://, gotify://, tgram://, matrix://, mailto://, json://, ...
    urls: tuple[Annotated[str, AfterValidator(_apprise_url)], ...] = ()


# What an exec hook's arguments may name: a duplicate's fields, and for a burst's summary
# `count` (event "summary"; path and match are then the burst's latest duplicate).
HOOK_FIELDS = ("event", "path", "match", "kind", "method", "score", "distance", "transform", "turned",
               "found_at", "id", "count")


def _hook_argument(argument: str) -> str:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(argument) if f is not None]
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for field in fields:
        if field not in HOOK_FIELDS:
            raise ValueError(f"unknown field {{{clip(field)}}}; known: {', '.join(HOOK_FIELDS)}")
    return argument


class ExecSinkConfig(Section):
    # The program and its arguments, run without a shell; {path}, {match}, ... are replaced by
    # the notice's fields, each argument staying one argument whatever the file name holds.
    command: tuple[Annotated[str, AfterValidator(_hook_argument)], ...] = ()
    timeout: float = Field(30.0, gt=0)

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list: the program, then each argument (never run by a shell)")
        return value


class BurstConfig(Section):
    # More than `count` alerts within `seconds` become one summary alert.
    count: int = Field(5, ge=1)
    seconds: float = Field(30.0, ge=0)
    # An alert waits until no duplicate has come for this long (at most `seconds`), so that a
    # burst is known as one before anything is sent.
    quiet_seconds: float = Field(2.0, ge=0)


class NoticesConfig(Section):
    log: LogSinkConfig = LogSinkConfig()
    sidecar: SidecarSinkConfig = SidecarSinkConfig()
    xmp: XmpSinkConfig = XmpSinkConfig()
    apprise: AppriseSinkConfig = AppriseSinkConfig()
    exec: ExecSinkConfig = ExecSinkConfig()
    burst: BurstConfig = BurstConfig()


# What a photo manager link pattern may name: the file's absolute path, its name, its folder.
LINK_FIELDS = ("path", "name", "folder")


def _bind(value: str) -> str:
    host, port = split_bind(value)
    if not host or not 0 <= port < 65536:  # 0: any free port (the log line says which)
        raise ValueError("HOST:PORT, for example 127.0.0.1:8765")
    return value


def split_bind(value: str) -> tuple[str, int]:
    """"127.0.0.1:8765" → ("127.0.0.1", 8765); "[::1]:8765" → ("::1", 8765). Port -1 if missing."""
    host, _, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    return host, int(port) if port.isdigit() else -1


def _password_hash(value: str) -> str:
    # What werkzeug.security.generate_password_hash makes: "scrypt:32768:8:1$salt$hex".
    method, _, rest = value.partition(":")
    if method not in ("scrypt", "pbkdf2") or rest.count("$") != 2:
        raise ValueError("not a password hash: make one with `dupwatch review --hash-password`")
    return value


def _http_url(value: str, fields: tuple[str, ...] = ()) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("an http:// or https:// URL")
    try:
        named = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    for field in named:
        if field not in fields:
            raise ValueError(f"unknown field {{{clip(field)}}}; known: {', '.join(fields) or 'none'}")
    return value


class ReviewConfig(Section):
    enabled: bool = False  # `dupwatch watch` serves the review page too
    bind: Annotated[str, AfterValidator(_bind)] = "127.0.0.1:8765"
    # Needed to bind anywhere but loopback: `dupwatch review --hash-password` makes it.
    password_hash: Annotated[str, AfterValidator(_password_hash)] | None = None
    # The page's address as phones reach it (through a reverse proxy, say): alerts link to it.
    public_url: Annotated[str, AfterValidator(_http_url)] | None = None
    # A link to the photo in your photo manager: {path}, {name} and {folder}, URL-quoted.
    photo_manager_url: Annotated[str, AfterValidator(lambda v: _http_url(v, LINK_FIELDS))] | None = None
    page_size: int = Field(30, ge=5, le=500)
    thumbnails: Path | None = None  # None: thumbnails/ beside the cache
    # Past this, the least recently shown thumbnails are removed (checked at start and daily).
    thumbnails_max_mb: int = Field(1024, ge=1)

    def thumbnail_dir(self, cache: Path) -> Path:
        return self.thumbnails.expanduser() if self.thumbnails is not None else cache.parent / "thumbnails"

    def pair_url(self, notice_id: int) -> str | None:
        if self.public_url is None:
            return None
        return f"{self.public_url.rstrip('/')}/pair/{notice_id}"


Preset = Literal["strict", "normal", "loose"]
# What a named preset sets, unless the config sets it itself. The confirm method's threshold and
# robust mode's CNN threshold come from each method's measured presets (`Method.preset_threshold`).
# loose also widens the hash search and the grey zone that
# geometry checks (perspective copies found: 0.913 from cosine 0.80, 0.760 from 0.85); strict
# asks geometry for 50 inliers instead of 25.
PRESET_KEYS: dict[str, dict[tuple[str, str], Any]] = {
    "strict": {("geometry", "threshold"): 0.67, ("candidates", "max_distance"): 12},
    "normal": {},
    "loose": {("candidates", "max_distance"): 24, ("geometry", "verify_from"): {"cosine": 0.80, "cnn": 0.30}},
}
ROBUST_THRESHOLD = 0.85  # robust.threshold of the normal preset


class ActionsConfig(Section):
    # Off by default: dupwatch never moves a photo unless you ask. With it on, `dupwatch resolve`
    # (and the review page) move a group's copies into `folder`, journaled and reversible
    # (`dupwatch restore`); nothing is ever deleted.
    enabled: bool = False
    # The quarantine: on the same filesystem as the photos (files are moved, never copied).
    # Never scanned or watched, whatever its name.
    folder: Path | None = None
    hardlink: bool = False  # an exact copy is replaced by a hard link to the copy kept

    @model_validator(mode="after")
    def _folder(self) -> ActionsConfig:
        if self.enabled and self.folder is None:
            raise ValueError("actions.enabled needs actions.folder: where the copies are moved")
        return self

    def quarantine_folder(self) -> str | None:
        return None if self.folder is None else os.path.abspath(self.folder.expanduser())


KeepCriterion = Literal["pixels", "lossless", "original-format", "size", "metadata", "oldest", "newest"]


class GroupsConfig(Section):
    # The order that picks the copy to keep: the first criterion two copies differ on decides.
    # A file in a `reference` folder always wins; a copy you chose wins over the order.
    keep: tuple[KeepCriterion, ...] = ("pixels", "lossless", "original-format", "size", "metadata", "oldest")

    @field_validator("keep")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("names a criterion twice")
        if {"oldest", "newest"} <= set(value):
            raise ValueError("names both oldest and newest")
        return value


class Config(Section):
    # How readily a photo is called a duplicate: strict (fewer edits found, no look-alikes),
    # normal, or loose (more edits found, and some look-alikes). Keys set below win over it.
    preset: Preset = "normal"
    cache: CacheConfig = CacheConfig()
    scan: ScanConfig = ScanConfig()
    candidates: CandidatesConfig = CandidatesConfig()
    confirm: ConfirmConfig = ConfirmConfig()
    cnn: CnnConfig = CnnConfig()
    robust: RobustConfig = RobustConfig()
    geometry: GeometryConfig = GeometryConfig()
    watch: WatchConfig = WatchConfig()
    notices: NoticesConfig = NoticesConfig()
    review: ReviewConfig = ReviewConfig()
    groups: GroupsConfig = GroupsConfig()
    actions: ActionsConfig = ActionsConfig()
    # Folders whose files are only ever the copy to keep and the match: never reported as
    # duplicates, never tagged (an archive you trust). They are scanned and watched like any other.
    reference: tuple[Path, ...] = ()

    def selection(self) -> Selection:
        """Which files `scan` and `watch` look at."""
        skip = (q,) if (q := self.actions.quarantine_folder()) is not None else ()
        return Selection(self.scan.extensions, self.scan.ignore, skip)

    def reference_roots(self) -> list[str]:
        return [os.path.abspath(p.expanduser()) for p in self.reference]

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return with_preset(data) if isinstance(data, dict) else data

    def threshold(self, method: Method) -> float:
        """The score at which `method` calls a pair a duplicate under this config."""
        if method.name == self.confirm.method:
            return self.confirm.resolved_threshold()
        if method.name == "geometry":
            return self.geometry.threshold
        return method.preset_threshold(self.preset)

    def method_options(self) -> Options:
        weights = None if self.cnn.weights is None else str(self.cnn.weights.expanduser())
        return Options(self.cnn.model, weights, self.cnn.batch_size)


def parse(data: Any, source: str | None = None) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("(top level)", "must be a mapping of sections", source)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(dotted(first["loc"]), _problem(first), source) from None


def with_preset(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its preset's values filled in where it sets none of its own."""
    preset = data.get("preset", "normal")
    if preset not in PRESET_KEYS:
        return data  # validation names the key
    values = dict(PRESET_KEYS[preset])
    confirm = data.get("confirm") or {}
    method = confirm.get("method", "cosine") if isinstance(confirm, dict) else None
    if method in METHODS:
        values["confirm", "threshold"] = METHODS[method].preset_threshold(preset)
    values["robust", "threshold"] = METHODS["cnn"].preset_threshold(preset, ROBUST_THRESHOLD)
    out = dict(data)
    for (section, key), value in values.items():
        mine = out.get(section)
        if mine is None:
            mine = {}
        if not isinstance(mine, dict):
            continue  # validation names the key
        if mine.get(key) is None:  # null is "the default": the preset's
            out[section] = {**mine, key: value}
    return out


def dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{clip(part)}" if out else clip(str(part)))
    return out or "(top level)"


EXCERPT = 60  # characters of a bad value or key an error line quotes: enough to recognise it


def clip(text: str, limit: int = EXCERPT) -> str:
    """`text` cut to `limit` characters: an error is one short line, whatever the file holds."""
    return text if len(text) <= limit else text[:limit] + "…"


def quoted(value: object) -> str:
    return clip(repr(value))


# Values never repeated in an error: they may hold tokens and passwords, and errors reach logs.
SECRET_KEYS = ("notices.apprise.urls", "review.password_hash")


def _problem(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    # Our validators quote the value in their message too: the whole message is clipped.
    message = clip(str(error["msg"]).removeprefix("Value error, "), 4 * EXCERPT)
    if error["type"] == "missing" or dotted(error["loc"]).startswith(SECRET_KEYS):
        return message
    return f"{message} (got {quoted(error['input'])})"


MAX_BYTES = 1 << 20  # a config is a few KiB: past this it is not one (a wrong --config)
# Values a file may expand to through YAML aliases (`*name`), counting each reuse anew: a
# config has a few hundred; an alias bomb (a billion laughs in a kilobyte) has billions.
MAX_NODES = 10_000
MAX_DEPTH = 64


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that no config needs and that would cost memory or time to load."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: aliases may not expand past MAX_NODES values in all."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) → the values it expands to, once composed
        self._expanded = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark = event.start_mark
        if self.check_event(yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                if id(node) not in self._sizes:
                    raise _Refused(None, None, "an alias inside its own anchor", mark)
                self._count(self._sizes[id(node)], mark)
            return super().compose_node(parent, index)
        before = self._expanded
        self._count(1, mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(None, None, f"nested more than {MAX_DEPTH} deep", mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._sizes[id(node)] = self._expanded - before
        return node

    def _count(self, nodes: int, mark: yaml.Mark) -> None:
        self._expanded += nodes
        if self._expanded > MAX_NODES:
            raise _Refused(
                None, None, f"too many aliases: the file expands to more than {MAX_NODES} values", mark)


def load_file(path: Path) -> Config:
    source = str(path)
    try:
        # Without blocking, and only a regular file: a FIFO named as the config would hang a start.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError("(file)", "not a regular file", source)
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read: {exc.strerror or exc}", source) from None
    if len(data) > MAX_BYTES:
        raise ConfigError("(file)", f"too large (over {MAX_BYTES >> 20} MiB): is it the config?", source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("(file)", f"not UTF-8 at byte {exc.start}", source) from None
    try:
        loaded = yaml.load(text, _Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        what = "" if isinstance(exc, _Refused) else "not valid YAML: "
        raise ConfigError("(file)", what + _yaml_problem(exc), source) from None
    return parse(loaded, source)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML says, on one line: its own message quotes lines of the file below a caret."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return clip(" ".join(filter(None, (exc.context, exc.problem))), 2 * EXCERPT) + where
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character #x{exc.character:04x} not allowed (character {exc.position + 1})"
    return clip(" ".join(str(exc).split()), 2 * EXCERPT)


def find(explicit: Path | None) -> Path | None:
    """The config file to use, or None for the built-in defaults."""
    if explicit is not None:
        return explicit
    if env := os.environ.get(ENV_CONFIG):
        return Path(env)
    user = Path(platformdirs.user_config_dir(APP)) / "config.yaml"
    try:
        return user if user.is_file() else None
    except OSError:
        return user  # in a folder this user may not look into: `load_file` says so, in one line


def load(explicit: Path | None = None) -> Config:
    path = find(explicit)
    return load_file(path) if path is not None else Config()
