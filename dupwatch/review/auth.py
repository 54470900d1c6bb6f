"""Who may use the page: loopback only without a password; the password's hash in the config.

The password (or a long random token used as one) is stored only as werkzeug's salted scrypt
hash. A login sets a signed session cookie (HttpOnly, SameSite=Lax) bound to that hash, so
changing the password logs every session out. Every form carries a CSRF token from the session.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import ipaddress
import secrets
import sys
import threading
import time
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from dupwatch.config import ReviewConfig, split_bind
from dupwatch.errors import ConfigError, UsageError

LOOPBACK_NAMES = ("localhost",)
FAILED_LOGIN_DELAY = 1.0  # with one login checked at a time: at most one guess a second
_login = threading.Lock()


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(review: ReviewConfig, bind: str) -> tuple[str, int]:
    """Where to listen. Anywhere but loopback needs a password: refused otherwise."""
    host, port = split_bind(bind)
    if not host or not 0 <= port < 65536:
        raise UsageError(f"--bind: HOST:PORT, for example 127.0.0.1:8765 (got {bind!r})")
    if not is_loopback(host) and review.password_hash is None:
        raise ConfigError("review.password_hash", f"needed to serve the review page on {bind}, beyond this"
                          " machine; make one with `dupwatch review --hash-password`, or bind to 127.0.0.1")
    return host, port


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def read_new_password() -> str:
    """From the terminal (asked twice), or the first line of stdin in a script."""
    if sys.stdin.isatty():
        first = getpass.getpass("password for the review page: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
    else:
        first = sys.stdin.readline().rstrip("\n")
    if len(first) < 8:
        raise UsageError("a password of at least 8 characters, please")
    return first


def check_password(stored_hash: str, password: str) -> bool:
    with _login:
        if check_password_hash(stored_hash, password):
            return True
        time.sleep(FAILED_LOGIN_DELAY)
        return False


def session_tag(stored_hash: str) -> str:
    """What a logged-in session holds: it stops matching when the password changes."""
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:32]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def secret_key(path: Path) -> bytes:
    """The key that signs session cookies: kept beside the cache, so logins survive restarts."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.touch(mode=0o600)
    temporary.write_bytes(key)
    try:
        path.hardlink_to(temporary)  # never replaces a key another process made meanwhile
    except FileExistsError:
        key = path.read_bytes()
    finally:
        temporary.unlink()
    return key
