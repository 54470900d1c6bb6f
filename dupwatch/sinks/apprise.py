"""Alerts through Apprise: one URL per target (ntfy, Gotify, Telegram, Matrix, e-mail, webhooks).

Each URL is its own sink, with its own place in the outbox: a target that is down is retried
on its own and holds back no other. With `review.public_url` set, each alert ends with the link
to its pair on the review page, and ntfy shows it as the notification's click action (Apprise's
`click` parameter, set per alert). Apprise has no click action for Gotify (its plugin sends no
`client::notification` extras), so there the link is in the text.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime
from urllib.parse import urlencode

from dupwatch.config import Config, ReviewConfig
from dupwatch.record import Notice
from dupwatch.report import canvas_text, shown
from dupwatch.sinks.base import Alert, DeliveryError


class AppriseTarget:
    alerts = True
    records = False

    CLICKABLE = ("ntfy", "ntfys")  # schemes whose Apprise plugin takes a `click` URL

    def __init__(self, url: str, label: str, review: ReviewConfig | None = None) -> None:
        import apprise  # only when a URL is configured

        self._apprise = apprise
        self._url = url
        self._review = review if review is not None else ReviewConfig()
        self._target = apprise.Apprise()
        if not self._target.add(url):
            raise ValueError(f"{label}: not a URL Apprise can send to")  # checked with the config
        # The position is keyed by the URL itself: reordering the list moves no target's place.
        self.key = "apprise:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        self.label = f"{label} ({url.split('://', 1)[0]})"

    @classmethod
    def configured(cls, config: Config) -> list[AppriseTarget]:
        return [cls(url, f"notices.apprise.urls[{n}]", config.review)
                for n, url in enumerate(config.notices.apprise.urls)]

    def send(self, item: Alert) -> None:
        link = review_link(self._review, item)
        title, body = alert_text(item)
        if link is not None:
            body += f"\nReview: {link}"
        target = self._target
        if link is not None and self._url.split("://", 1)[0].lower() in self.CLICKABLE:
            target = self._apprise.Apprise()
            target.add(self._url + ("&" if "?" in self._url else "?") + urlencode({"click": link}))
        with self._apprise.LogCapture(level=logging.WARNING) as said:  # type: ignore[no-untyped-call]
            ok = target.notify(body=body, title=title, body_format=self._apprise.NotifyFormat.TEXT)
        if not ok:
            reason = " ".join(said.getvalue().split()) or "not delivered"
            raise DeliveryError(reason[:300])


def review_link(review: ReviewConfig, item: Alert) -> str | None:
    """The pair's page (a summary: the list of what is not yet reviewed), if the page has a public URL."""
    if isinstance(item, Notice):
        return review.pair_url(item.id)
    return None if review.public_url is None else review.public_url.rstrip("/") + "/"


def alert_text(item: Alert) -> tuple[str, str]:
    """A title and a body a person reads on a phone: names first, folders after."""
    if isinstance(item, Notice):
        m = item.match
        how = "the same bytes" if m.kind == "exact" else f"{m.method} {m.score:.3f}"
        if m.transform is not None:
            how += f", {m.transform}"
        if m.turned is not None:
            how += f", {canvas_text(m.turned)}"
        title = f"Duplicate photo: {shown(os.path.basename(m.path))}"
        body = (f"{shown(m.path)}\nduplicates {shown(m.match)}\n({how}, {_clock(item.found_at)})")
        return title, body
    title = f"{item.count} duplicate photos"
    since = datetime.fromtimestamp(item.first.found_at).strftime("%Y-%m-%dT%H:%M:%S")
    body = (f"{item.count} duplicates found {_clock(item.first.found_at)}–{_clock(item.last.found_at)},"
            f" the latest:\n{shown(item.last.match.path)}\nduplicates {shown(item.last.match.match)}\n"
            f"`dupwatch notices --since {since}` lists them all.")
    return title, body


def _clock(when: float) -> str:
    return datetime.fromtimestamp(when).strftime("%H:%M:%S")

