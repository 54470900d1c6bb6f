"""The unit files in systemd/: systemd itself checks them, and the watcher's unit is hardened."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
UNIT_FILES = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))
# Words systemd uses when it ignores or rejects a line; it still exits 0 for an unknown key.
PROBLEMS = re.compile(r"unknown key|failed|invalid", re.IGNORECASE)

Unit = dict[str, dict[str, list[str]]]  # section → key → every value, in order


def parse(path: Path) -> Unit:
    """By hand: keys repeat (Environment=), values may be empty (CapabilityBoundingSet=)."""
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def test_the_expected_units_are_there() -> None:
    assert set(UNIT_FILES) >= {"dupwatch.service", "dupwatch-user.service",
                               "dupwatch-scan.service", "dupwatch-scan.timer"}


@pytest.fixture
def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not on PATH (Debian/Ubuntu: apt-get install systemd)")
    return found


@pytest.mark.parametrize("name", UNIT_FILES)
def test_systemd_analyze_verify(name: str, analyze: str, tmp_path: Path) -> None:
    # `verify` fails when ExecStart='s program does not exist, and /opt/dupwatch/.venv or
    # ~/.local/share/dupwatch/venv do not exist on a test machine. So the units are checked
    # as copies whose ExecStart= runs /bin/true with the same arguments, every other line
    # untouched. All units go into one folder: the timer is verified with its service.
    folder = tmp_path / "units"
    folder.mkdir()
    for unit in UNIT_FILES:
        text = (UNITS / unit).read_text(encoding="utf-8")
        text = re.sub(r"^(ExecStart=[-@:+!]*)\S+", r"\1/bin/true", text, flags=re.MULTILINE)
        (folder / unit).write_text(text, encoding="utf-8")
    assert "/bin/true" in (folder / name).read_text() or not name.endswith(".service")

    command = [analyze]
    env = dict(os.environ)
    if name.endswith("-user.service"):
        # A user unit is checked by a user manager, which wants a runtime directory of its own.
        command.append("--user")
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    command += ["verify", str(folder / name)]
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    problems = [line for line in output.splitlines() if name in line and PROBLEMS.search(line)]
    assert problems == [], output


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
}


def test_the_system_unit_is_hardened() -> None:
    service = parse(UNITS / "dupwatch.service")["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    # torch's JIT (oneDNN) may need pages that are writable and executable.
    assert "MemoryDenyWriteExecute" not in service


def test_the_system_unit_runs_the_watcher_under_systemd() -> None:
    unit = parse(UNITS / "dupwatch.service")
    service = unit["Service"]
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": "/opt/dupwatch/.venv/bin/dupwatch watch --config /etc/dupwatch/config.yaml",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "TimeoutStopSec": "15",
        "User": "dupwatch",
        "Group": "dupwatch",
        "StateDirectory": "dupwatch",
        "CacheDirectory": "dupwatch",
        "ConfigurationDirectory": "dupwatch",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    environment = " ".join(service["Environment"]).split()
    for assignment in ("XDG_CACHE_HOME=/var/cache", "XDG_STATE_HOME=/var/lib", "XDG_CONFIG_HOME=/etc"):
        assert assignment in environment
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_user_unit() -> None:
    unit = parse(UNITS / "dupwatch-user.service")
    service = unit["Service"]
    assert service["ExecStart"] == ["%h/.local/share/dupwatch/venv/bin/dupwatch watch"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30"]
    assert "User" not in service and "Group" not in service  # a user manager runs it as you
    for key in ("NoNewPrivileges", "RestrictAddressFamilies", "SystemCallFilter", "UMask"):
        assert service[key] == [HARDENING[key]], key
    assert unit["Install"]["WantedBy"] == ["default.target"]
