"""The unit files in systemd/: systemd itself checks them, they are hardened, and what runs under
them writes where the unit lets it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PHOTOS, SAMPLES

UNITS = Path(__file__).resolve().parent.parent / "systemd"
UNIT_FILES = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))
# Words systemd uses when it ignores or rejects a line; it still exits 0 for an unknown key.
PROBLEMS = re.compile(r"unknown key|failed|invalid", re.IGNORECASE)

Unit = dict[str, dict[str, list[str]]]  # section → key → every value, in order


def parse(path: Path) -> Unit:
    """By hand: keys repeat (Environment=), values may be empty (CapabilityBoundingSet=), a line
    ending in a backslash goes on in the next (as systemd reads it: the backslash a space)."""
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for raw in re.sub(r"\\\n", " ", path.read_text(encoding="utf-8")).splitlines():
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
    "CapabilityBoundingSet": "",
    "UMask": "0077",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "ProtectProc": "invisible",
    "PrivateMounts": "yes",
    "RemoveIPC": "yes",
    # EPERM, not SIGSYS: dupwatch tries to give an XMP sidecar its photo's owner (chown).
    "SystemCallErrorNumber": "EPERM",
}
SYSTEM_UNITS = ("dupwatch.service", "dupwatch-scan.service")
FILTER = ["@system-service", "~@privileged @resources"]


@pytest.mark.parametrize("name", SYSTEM_UNITS)
def test_the_system_units_are_hardened(name: str) -> None:
    service = parse(UNITS / name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert service["SystemCallFilter"] == FILTER
    assert "PrivateNetwork" not in service  # alerts go out over the network
    # torch's cpuinfo reads /proc/cpuinfo: offered commented, for installs without the CNN method.
    assert "ProcSubset" not in service
    assert "\n#ProcSubset=pid\n" in (UNITS / name).read_text(encoding="utf-8")
    if name == "dupwatch.service":
        # torch's JIT (oneDNN) may need pages that are writable and executable.
        assert "MemoryDenyWriteExecute" not in service


@pytest.mark.parametrize("name", SYSTEM_UNITS)
def test_systemd_analyze_security_stays_low(name: str, analyze: str) -> None:
    result = subprocess.run([analyze, "security", "--offline=yes", str(UNITS / name)],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 1.9


@pytest.mark.parametrize("name", SYSTEM_UNITS)
def test_dupwatch_writes_only_into_the_units_own_directories(name: str, tmp_path: Path) -> None:
    # ProtectSystem=strict and ProtectHome=read-only: the cache, the notice log and the JSON
    # sidecars must resolve into CacheDirectory= and StateDirectory=, not the dupwatch user's
    # (read-only, often missing) home.
    service = parse(UNITS / name)["Service"]
    assert service["StateDirectory"] == ["dupwatch"] and service["CacheDirectory"] == ["dupwatch"]
    environment = dict(a.split("=", 1) for a in " ".join(service["Environment"]).split())
    code = ("from dupwatch import config as c; print(c.CacheConfig().resolved()); "
            "print(c.LogSinkConfig().resolved(c.CacheConfig())); print(c.SidecarSinkConfig().root())")
    env = {**environment, "HOME": str(tmp_path / "read-only home"), "PATH": os.environ["PATH"],
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out[0] == "/var/cache/dupwatch/index.sqlite3"
    assert [Path(p).is_relative_to("/var/lib/dupwatch") for p in out[1:]] == [True, True], out


def scan_unit_command(config: Path) -> list[str]:
    """dupwatch-scan.service's ExecStart=, with this Python and `config` for the installed ones."""
    (command,) = parse(UNITS / "dupwatch-scan.service")["Service"]["ExecStart"]
    argv = [arg.replace("/etc/dupwatch/config.yaml", str(config)) for arg in shlex.split(command)]
    assert argv[0] == "/opt/dupwatch/.venv/bin/python"
    return [sys.executable, *argv[1:]]


def test_the_scan_unit_scans_the_configs_folders(tmp_path: Path) -> None:
    assert "/srv/photos" not in "".join(parse(UNITS / "dupwatch-scan.service")["Service"]["ExecStart"])
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS[:3]:
        shutil.copy(SAMPLES / name, folder / name)
    shutil.copy(SAMPLES / PHOTOS[0], folder / "zz copy.png")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"watch": {"paths": [str(folder)]}}))
    result = subprocess.run(scan_unit_command(config), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "zz copy.png" in result.stdout and "4 indexed" in result.stdout + result.stderr

    # No folders, or a broken config: one line that says so, as the command line would.
    config.write_text(yaml.safe_dump({"notices": {}}))
    result = subprocess.run(scan_unit_command(config), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr == f"dupwatch: no folders to scan: set watch.paths in {config}\n"
    config.write_text(yaml.safe_dump({"watch": {"paths": 5}}))
    result = subprocess.run(scan_unit_command(config), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.startswith("dupwatch: ") and "Traceback" not in result.stderr, result.stderr


def test_no_unit_calls_xmp_writing_a_later_feature() -> None:
    for name in UNIT_FILES:
        assert "later feature" not in (UNITS / name).read_text(encoding="utf-8"), name


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
    for key in ("NoNewPrivileges", "RestrictAddressFamilies", "UMask", "SystemCallErrorNumber"):
        assert service[key] == [HARDENING[key]], key
    # chown back: as you, a merged XMP sidecar keeps its group.
    assert service["SystemCallFilter"] == [*FILTER, "@chown"]
    # Mount namespaces a user manager may not have (the service would not start): left commented.
    for key in ("ProtectProc", "PrivateMounts", "ProtectSystem"):
        assert key not in service
        assert f"#{key}=" in (UNITS / "dupwatch-user.service").read_text(encoding="utf-8")
    assert "RemoveIPC" not in service  # it would remove the user's own IPC objects
    assert unit["Install"]["WantedBy"] == ["default.target"]
