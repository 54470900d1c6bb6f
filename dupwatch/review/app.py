"""The review page as a Flask app: the list, a pair's page, the decisions, the groups (the copy to
keep, and with `actions.enabled` moving a group's copies to the quarantine), thumbnails, the login.

It reads and decides through the Store protocol only, on one connection per server thread.
Files are found by their id in the index, never by a path from a request. Every state change is
a POST carrying the session's CSRF token. Names are shown escaped (`report.shown`: bytes that are
not UTF-8 as \\xe9, newlines as \\n), then escaped by Jinja2's autoescape, and the
Content-Security-Policy allows no script at all: the page has none.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Response, abort, redirect, render_template, request, send_file, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from dupwatch import actions
from dupwatch.config import Config
from dupwatch.errors import CacheUnavailable, DupwatchError
from dupwatch.library import Keeping, Library
from dupwatch.report import canvas_text, shown, transform_text
from dupwatch.review import auth
from dupwatch.review.decide import choose_keeper, not_duplicate, sidecars_of
from dupwatch.review.thumbs import SIZES, Thumbnails
from dupwatch.store import open_store
from dupwatch.store.base import Reviewed, ReviewFilter, Status, Store

log = logging.getLogger("dupwatch")

STATUSES: dict[Status, str] = {"unreviewed": "not yet reviewed", "seen": "seen",
                               "not-duplicate": "not a duplicate", "all": "all"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self';"
                               " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(config: Config, store: Callable[[], Store] | None = None) -> Flask:
    review = config.review
    cache = config.cache.resolved()
    here = Path(__file__).parent
    app = Flask("dupwatch.review", template_folder=str(here / "templates"),
                static_folder=str(here / "static"))
    app.secret_key = auth.secret_key(cache.with_name(cache.name + ".review-key"))
    app.config.update(SESSION_COOKIE_NAME="dupwatch", SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=timedelta(days=30), MAX_CONTENT_LENGTH=64 * 1024)
    opened = threading.local()
    thumbnails = Thumbnails(review.thumbnail_dir(cache))
    outage = threading.Event()  # the cache's server is unreachable: said once, until it is back

    def db() -> Store:
        # One connection per server thread (SQLite connections stay in their thread).
        if getattr(opened, "store", None) is None:
            opened.store = store() if store is not None else open_store(config.cache)
        found: Store = opened.store
        return found

    def logged_in() -> bool:
        return review.password_hash is None or auth.same(str(session.get("auth", "")),
                                                       auth.session_tag(review.password_hash))

    @app.before_request
    def guard() -> BaseResponse | None:
        host = (request.host.rsplit(":", 1)[0] if not request.host.endswith("]")
                else request.host).strip("[]")
        if review.password_hash is None and not auth.is_loopback(host):
            # No password: only this machine may use it. A foreign Host header is a page on
            # some website whose name was pointed at 127.0.0.1 (DNS rebinding).
            abort(403)
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        if request.method == "POST":
            if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
                abort(403)
            if not auth.same(request.form.get("csrf", ""), str(session["csrf"])):
                abort(400, "the form has expired: reload the page and try again")
        if request.endpoint in ("login", "static") or logged_in():
            return None
        if request.method == "GET" and request.endpoint in ("pairs", "pair", "groups", "group"):
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        abort(401)

    @app.errorhandler(CacheUnavailable)
    def unavailable(exc: CacheUnavailable) -> Response:
        # This thread's connection is gone with the server: its next request opens a new one.
        lost, opened.store = getattr(opened, "store", None), None
        if lost is not None:
            lost.close()
        if not outage.is_set():
            outage.set()
            log.warning("review page: %s; each page asks again", exc)
        return Response(f"{exc}\nThe page works again once the cache is back: reload it then.\n",
                        503, mimetype="text/plain")

    @app.after_request
    def headers(response: Response) -> Response:
        if outage.is_set() and response.status_code < 500:
            outage.clear()
            log.info("review page: the cache is back")
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.context_processor
    def helpers() -> dict[str, Any]:
        return {"csrf": session.get("csrf", ""), "manager": manager_link, "statuses": STATUSES,
                "auth": review.password_hash is not None, "group_of": group_of,
                "actions": actions.enabled(config)}

    def group_of(item: Reviewed) -> tuple[int, int] | None:
        """The group a notice's files are in now (groups merge as copies land) and its size."""
        store = db()
        for f in (item.duplicate, item.original):
            group_id = None if f.id is None else store.group_of(f.id)
            group = None if group_id is None else store.group(group_id)
            if group is not None:
                return group.id, len(group.members)
        return None

    def library() -> Library:
        return Library(db(), [], config.reference_roots(), config.groups.keep)

    def keeping(group_id: int) -> Keeping:
        lib = library()
        found = lib.keeping(group_id)
        lib.commit()  # the headers read for the order, so that they are read once
        if found is None:
            abort(404)
        return found

    def manager_link(path: str) -> str | None:
        pattern = review.photo_manager_url
        if pattern is None:
            return None
        folder, name = os.path.split(path)
        # The name's own bytes, percent-encoded: a name that is not UTF-8 links to that file too.
        return pattern.format(path=quote(os.fsencode(path)), name=quote(os.fsencode(name)),
                              folder=quote(os.fsencode(folder)))

    @app.get("/")
    def pairs() -> str:
        which, args = _filter(request.args)
        page = _int(request.args.get("page"), 1)
        size = review.page_size
        items, total = db().review(which, (page - 1) * size, size)
        pages = max(1, -(-total // size))

        def page_url(number: int) -> str:
            return "?" + urlencode({**args, "page": number})

        return render_template("list.html", items=items, total=total, page=page, pages=pages,
                               page_url=page_url, args=args, methods=db().notice_methods(),
                               here=request.full_path.rstrip("?"))

    @app.get("/pair/<int:notice_id>")
    def pair(notice_id: int) -> str:
        item = db().reviewed(notice_id)
        if item is None:
            abort(404)
        return render_template("pair.html", item=item, here=request.path)

    @app.post("/pair/<int:notice_id>")
    def decide(notice_id: int) -> BaseResponse:
        store = db()
        item = store.reviewed(notice_id)
        if item is None:
            abort(404)
        action = request.form.get("action", "")
        if action in ("seen", "unseen"):
            store.set_seen(notice_id, action == "seen")
        elif action in ("not-duplicate", "duplicate"):
            hashes = item.hashes
            if hashes is None:
                abort(409, "the files of this notice are no longer in the index")
            not_duplicate(store, *hashes, sidecars_of(item), decided=action == "not-duplicate", retag=item,
                          xmp_enabled=config.notices.xmp.enabled)
        else:
            abort(400)
        return redirect(_local(request.form.get("next")) or url_for("pair", notice_id=notice_id), 303)

    @app.get("/groups")
    def groups() -> str:
        page = _int(request.args.get("page"), 1)
        size = review.page_size
        ids = db().groups()
        pages = max(1, -(-len(ids) // size))
        lib = library()
        found = [k for group_id in ids[(page - 1) * size:page * size]
                 if (k := lib.keeping(group_id)) is not None]
        lib.commit()
        return render_template("groups.html", groups=found, total=len(ids), page=page, pages=pages)

    @app.get("/group/<int:group_id>")
    def group(group_id: int) -> str:
        return render_template("group.html", group=keeping(group_id), here=request.path)

    @app.post("/group/<int:group_id>/keep")
    def keep_instead(group_id: int) -> BaseResponse:
        """Keep this file of the group instead: remembered in the cache, as `dupwatch keep` does."""
        file_id = _int(request.form.get("file"), 0)
        if not file_id or db().group_of(file_id) != group_id:
            abort(400, "that file is not in this group (any more): reload the page")
        choose_keeper(library(), file_id, config.notices.xmp.enabled)
        return redirect(url_for("group", group_id=group_id), 303)

    @app.get("/group/<int:group_id>/resolve")
    def resolve_preview(group_id: int) -> str:
        """What moving the group's copies would do, nothing moved (`dupwatch resolve --dry-run`),
        and the button that does it."""
        if not actions.enabled(config):
            abort(403, "actions are off: set actions.enabled and actions.folder to move copies")
        lib = library()
        group = lib.keeping(group_id)
        lib.commit()
        if group is None:
            abort(404, f"no group {group_id} (already resolved?): see the groups")
        planned = list(actions.resolve(lib, actions.quarantine(config), group, dry_run=True))
        return render_template("resolved.html", group=group, done=planned, error=None, planned=True)

    @app.post("/group/<int:group_id>/resolve")
    def resolve(group_id: int) -> tuple[str, int]:
        """The group's copies into the quarantine, as `dupwatch resolve GROUP` does."""
        if not actions.enabled(config):
            abort(403, "actions are off: set actions.enabled and actions.folder to move copies")
        from dupwatch.pipeline import Pipeline

        store = db()
        quarantine = actions.quarantine(config)
        # The pipeline's library: a copy forgotten leaves its searches too, as with the CLI.
        pipeline = Pipeline(config, store)
        done: list[actions.Outcome] = []
        error = None
        try:
            quarantine.recover()
            group = pipeline.library.keeping(group_id)
            pipeline.library.commit()
            if group is None:
                abort(404, f"no group {group_id} (already resolved?): see the groups")
            try:
                done.extend(actions.resolve(pipeline.library, quarantine, group))
            except DupwatchError as exc:
                error = str(exc)
        finally:
            pipeline.close()
        return render_template("resolved.html", group=group, done=done, error=error), (409 if error else 200)

    @app.get("/file/<int:file_id>/<size>.jpg")
    def thumbnail(file_id: int, size: str) -> BaseResponse:
        if size not in SIZES:
            abort(404)
        file = db().file_view(file_id)
        made = thumbnails.get(file, SIZES[size]) if file is not None else None
        if made is None:
            abort(404)
        response = send_file(made, mimetype="image/jpeg", max_age=3600)
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    @app.route("/login", methods=["GET", "POST"])
    def login() -> BaseResponse | str:
        target = _local(request.values.get("next")) or url_for("pairs")
        if review.password_hash is None:
            return redirect(target)
        wrong = False
        if request.method == "POST":
            if auth.check_password(review.password_hash, request.form.get("password", "")):
                session.clear()
                session.permanent = True
                session["auth"] = auth.session_tag(review.password_hash)
                session["csrf"] = secrets.token_urlsafe(32)
                return redirect(target, 303)
            wrong = True
        return render_template("login.html", next=target, wrong=wrong), (401 if wrong else 200)  # type: ignore[return-value]

    @app.post("/logout")
    def logout() -> BaseResponse:
        session.clear()
        return redirect(url_for("login"), 303)

    # Every value a template shows goes through `shown` (markup the templates make is left as
    # it is): a name with a byte that is not UTF-8 shows it as \xe9, where it would otherwise
    # stop the page from being encoded, and a newline in a name as \n; autoescape comes after.
    app.jinja_env.finalize = _shown
    app.jinja_env.filters.update(size=_size, when=_when, folder=lambda p: os.path.dirname(p) or "/",
                                 name=os.path.basename, turned=transform_text, canvas=canvas_text,
                                 kind=_kind)
    return app


def _shown(value: Any) -> Any:
    return shown(value) if type(value) is str else value  # Markup (a str subclass) is left alone


def _filter(query: Any) -> tuple[ReviewFilter, dict[str, str]]:
    """The list's filters from the query string; unknown values are ignored, not errors."""
    asked = query.get("status", "unreviewed")
    status: Status = asked if asked in STATUSES else "unreviewed"
    kind = query.get("kind") if query.get("kind") in ("exact", "near") else None
    since, until = _day(query.get("since")), _day(query.get("until"))
    folder = (query.get("folder") or "").strip() or None
    which = ReviewFilter(status, folder, query.get("method") or None, kind, since,
                         None if until is None else until + 86400)
    args = {k: v for k, v in (("status", status), ("folder", which.folder), ("method", which.method),
                              ("kind", kind), ("since", query.get("since") if since else None),
                              ("until", query.get("until") if until else None)) if v}
    return which, args


def _day(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").timestamp()
    except ValueError:
        return None


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and int(text) > 0 else default


def _local(target: str | None) -> str | None:
    """A redirect target from a form, only if it stays on this site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _kind(item: Reviewed) -> str:
    m = item.notice.match
    return "exact copy" if m.kind == "exact" else f"near · {m.method} {m.score:.3f}"
