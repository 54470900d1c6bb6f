"""The review page in a real browser: Debian's chromium, headless, driven by Playwright.

The page is served by a real `dupwatch review` process from the notices of a real scan of real
photographs; decisions are clicked, and then real scans and real `dupwatch watch` daemons must
honour them. One browser serves the whole module. The first test also takes the screenshot the
README shows: into the test's own folder, or, with DUPWATCH_SCREENSHOT=docs/review.png, there
(so that running the tests leaves the checkout as it was).
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from tests.conftest import open_rgb, run, run_process
from tests.review_server import ReviewProcess
from tests.test_review import gone_and_back, three_versions
from tests.test_watch import SETTLE, Start, duplicates, start  # noqa: F401  (a fixture)

CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def dialogs() -> list[str]:
    """The messages of every alert() the page opened: a script that ran."""
    return []


@pytest.fixture
def page(browser: Browser, dialogs: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 1000})
    opened = context.new_page()

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", record)
    yield opened
    context.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ReviewProcess]]:
    started: list[ReviewProcess] = []
    yield started
    for server in started:
        server.kill()


def near_copy(source: Path, target: Path) -> Path:
    image = open_rgb(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS).save(target, quality=85)
    return target


def matched(result_json: list[dict[str, object]], original: Path) -> list[dict[str, object]]:
    return [e for e in result_json if e["event"] == "duplicate" and e["match"] == str(original)]


def test_not_a_duplicate_is_never_reported_again_until_undone(
        page: Page, dialogs: list[str], servers: list[ReviewProcess], start: Start,  # noqa: F811
        photos: Path, cache: Path, tmp_path: Path) -> None:
    original = photos / "chelsea.png"
    export = near_copy(original, photos / "exports" / "chelsea-small.jpg")
    shutil.copy(photos / "coffee.png", photos / "exports" / "coffee copy.png")
    scanned = run("scan", photos, "--cache", cache, "--json")
    assert len(matched(scanned.json(), original)) == 1
    server = ReviewProcess(tmp_path, "--cache", cache)
    servers.append(server)
    p = page

    p.goto(server.url)
    pair = p.locator("li.pair", has_text="chelsea-small.jpg")
    assert pair.count() == 1
    assert "chelsea.png" in pair.inner_text() and "near · cosine" in pair.inner_text()
    assert p.locator("li.pair", has_text="coffee copy.png").count() == 1
    assert pair.locator("img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    shot = Path(os.environ.get("DUPWATCH_SCREENSHOT", tmp_path / "review.png"))
    p.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The pair's own page: both images large, the toggle, the paths to copy.
    pair.locator("a").first.click()
    assert p.locator("input[readonly]").first.input_value() == str(export)
    p.locator("label.toggle", has_text="tap to switch").click()
    assert p.locator(".stack img.b").is_visible()
    p.locator("button", has_text="not a duplicate").click()
    assert p.locator(".badge", has_text="not a duplicate").count() == 1
    p.goto(server.url)
    assert p.locator("li.pair", has_text="chelsea-small.jpg").count() == 0

    # A rescan: the export moved and renamed (gone, then back as a new file) is not reported.
    moved = gone_and_back(export, photos / "moved" / "renamed.jpg", photos, cache)
    content = moved.read_bytes()
    rescanned = run("scan", photos, "--cache", cache, "--json")
    assert rescanned.events("summary")[0]["indexed"] == 1
    assert matched(rescanned.json(), original) == []

    # The daemon: a copy landing while it runs, and one that came while it was down.
    config = tmp_path / "watch.yaml"
    config.write_text(f"watch:\n  settle_seconds: {SETTLE}\n")
    moved.unlink()
    daemon = start("--config", config, "--cache", cache, photos)
    daemon.wait_log("caught up:")
    (photos / "again").mkdir()
    (photos / "again" / "one.jpg").write_bytes(content)
    shutil.copy(photos / "rocket.jpg", photos / "again" / "rocket copy.jpg")  # a real one, as a marker
    daemon.wait_duplicate(photos / "again" / "rocket copy.jpg", photos / "rocket.jpg")
    assert daemon.stop() == 0
    (photos / "again" / "one.jpg").unlink()
    (photos / "again" / "two.jpg").write_bytes(content)
    restarted = start("--config", config, "--cache", cache, photos)
    restarted.wait_log("caught up: .* 1 indexed")
    assert restarted.stop() == 0
    for log in (daemon.log(), restarted.log()):
        assert [m for _, m in duplicates(log) if m == str(original)] == []

    # Undo on the page: the pair is listed again, and a new copy is reported again.
    p.goto(server.url + "?status=not-duplicate")
    p.locator("li.pair", has_text="chelsea-small.jpg").locator(
        "button", has_text="undo not a duplicate").click()
    p.goto(server.url)
    assert p.locator("li.pair", has_text="chelsea-small.jpg").count() == 1
    (photos / "again" / "two.jpg").unlink()
    run("scan", photos, "--cache", cache)
    (photos / "again" / "three.jpg").write_bytes(content)
    assert len(matched(run("scan", photos, "--cache", cache, "--json").json(), original)) == 1
    assert dialogs == []


def test_a_hostile_file_name_shows_as_text(page: Page, dialogs: list[str], servers: list[ReviewProcess],
                                           photos: Path, cache: Path, tmp_path: Path) -> None:
    # "/" cannot be in a name: the hostile path is a folder `<script>alert(1)<` and `script>.jpg`.
    hostile = photos / "<script>alert(1)<" / "script>.jpg"
    hostile.parent.mkdir()
    shutil.copy(photos / "astronaut.png", hostile)
    run("scan", photos, "--cache", cache)
    server = ReviewProcess(tmp_path, "--cache", cache)
    servers.append(server)
    p = page
    p.goto(server.url)
    pair = p.locator("li.pair", has_text="script>.jpg")
    assert "<script>alert(1)<" in pair.inner_text()
    assert p.locator("script").count() == 0
    pair.locator("a").first.click()
    paths = [field.input_value() for field in p.locator("input[readonly]").all()]
    assert f"{photos}/<script>alert(1)</script>.jpg" in paths
    assert p.locator("script").count() == 0 and dialogs == []
    # Its group's page, by the pair's link: the name is text there too.
    p.locator("a.group-link").click()
    assert p.locator("li.member", has_text="script>.jpg").count() == 1
    assert "<script>alert(1)<" in p.locator("li.member", has_text="script>.jpg").inner_text()
    paths = [field.input_value() for field in p.locator("input[readonly]").all()]
    assert f"{photos}/<script>alert(1)</script>.jpg" in paths
    assert p.locator("script").count() == 0 and dialogs == []


def test_a_group_keeps_the_copy_you_choose_and_its_copies_go_to_the_quarantine_and_back(
        page: Page, dialogs: list[str], servers: list[ReviewProcess], cache: Path, tmp_path: Path) -> None:
    versions = three_versions(tmp_path / "group")
    content = {name: path.read_bytes() for name, path in versions.items()}
    quarantine = tmp_path / "quarantine"
    config = tmp_path / "config.yaml"
    config.write_text(f"actions:\n  enabled: true\n  folder: {quarantine}\n")
    run("scan", tmp_path / "group", "--cache", cache, "--config", config)
    server = ReviewProcess(tmp_path, "--cache", cache, "--config", config)
    servers.append(server)
    p = page

    p.goto(server.url)
    p.locator("header a", has_text="groups").click()
    p.locator("li.group a", has_text="3 files").click()
    members = p.locator("li.member")
    assert members.count() == 3
    keeper = p.locator("li.member.keeper")
    assert keeper.locator(".badge", has_text="keep").count() == 1 and "original.png" in keeper.inner_text()
    assert "lossless" in keeper.inner_text()  # why it won over the JPEG of the same size
    for img in members.locator("img").all():
        assert img.evaluate("img => img.complete && img.naturalWidth > 0")

    # Keep the half-size JPEG instead: the cache remembers it.
    p.locator("li.member", has_text="half.jpg").locator("button", has_text="keep this one instead").click()
    assert "half.jpg" in p.locator("li.member.keeper").inner_text()
    assert "chosen by you" in p.locator("li.member.keeper").inner_text()
    [group] = run("groups", "--json", "--cache", cache, "--config", config).json()
    assert group["keep"] == str(versions["half"]) and group["why"] == "chosen by you"

    # Move the copies: the two others go to the quarantine, the one kept stays.
    p.locator("button", has_text="move the copies to the quarantine").click()
    assert "Nothing has moved yet. 2 would move to the quarantine" in p.locator("main").inner_text()
    assert all(versions[name].exists() for name in versions)  # the page's dry run moved nothing
    p.locator("button", has_text="move them").click()
    assert "2 moved to the quarantine" in p.locator("main").inner_text()
    assert versions["half"].exists() and not versions["png"].exists() and not versions["q40"].exists()
    for name in ("png", "q40"):
        assert (quarantine / str(versions[name]).lstrip("/")).read_bytes() == content[name]
    assert run("groups", "--json", "--cache", cache, "--config", config).json() == []

    restored = run("restore", "--cache", cache, "--config", config)
    assert restored.code == 0
    assert {name: path.read_bytes() for name, path in versions.items()} == content
    assert p.locator("script").count() == 0 and dialogs == []


def test_with_a_password_nothing_is_served_without_logging_in(
        page: Page, servers: list[ReviewProcess], photos: Path, cache: Path, tmp_path: Path) -> None:
    shutil.copy(photos / "coffee.png", photos / "coffee copy.png")
    run("scan", photos, "--cache", cache)
    made = run_process("review", "--hash-password", input="correct horse battery\n")
    assert made.code == 0 and made.out.startswith("scrypt:")
    config = tmp_path / "auth.yaml"
    config.write_text(f"review:\n  password_hash: '{made.out.strip()}'\n")
    server = ReviewProcess(tmp_path, "--cache", cache, "--config", config)
    servers.append(server)

    no_redirects = urllib.request.build_opener(NoRedirect())
    for method, path, refused in (("GET", "", 302), ("GET", "pair/1", 302), ("GET", "file/1/small.jpg", 401),
                                  ("POST", "pair/1", 400), ("GET", "groups", 302), ("GET", "group/1", 302),
                                  ("POST", "group/1/keep", 400), ("POST", "group/1/resolve", 400)):
        request = urllib.request.Request(server.url + path, method=method,  # noqa: S310  (http://127.0.0.1)
                                         data=b"action=seen" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as caught:
            no_redirects.open(request, timeout=10)
        assert caught.value.code == refused, (method, path)
        if refused == 302:
            assert caught.value.headers["Location"].startswith("/login")

    p = page
    p.goto(server.url)
    assert p.url.startswith(server.url + "login")
    p.fill("input[name=password]", "wrong password")
    p.click("button:has-text('log in')")
    assert p.locator(".error").inner_text() == "Wrong password."
    p.fill("input[name=password]", "correct horse battery")
    p.click("button:has-text('log in')")
    assert p.locator("li.pair", has_text="coffee copy.png").count() == 1
    p.locator("li.pair").locator("button", has_text="seen").first.click()
    assert p.locator("li.pair").count() == 0
    assert run("notices", "--unreviewed", "--cache", cache).out.startswith("nothing unreviewed")


def test_binding_beyond_loopback_needs_a_password(cache: Path) -> None:
    result = run_process("review", "--bind", "0.0.0.0:0", "--cache", cache)
    assert result.code == 2
    assert "review.password_hash: needed to serve the review page on 0.0.0.0:0" in result.err


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
