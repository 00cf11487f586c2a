"""What ships: the systemd unit (verified, hardened) and the SD-card image stage (linted)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "deskphone.service"
IMAGE = ROOT / "image"


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing (./dev installs it)")
        pytest.skip(f"{program} is not installed")
    return path


def unit_for_tests(tmp_path: Path) -> Path:
    """The unit with ExecStart on a binary that exists here (verify insists on it)."""
    unit = tmp_path / "deskphone.service"
    unit.write_text(UNIT.read_text().replace("/opt/deskphone/venv/bin/deskphone", "/bin/true"))
    return unit


def test_the_unit_verifies_without_a_single_warning(tmp_path: Path) -> None:
    need("systemd-analyze")
    done = subprocess.run(["systemd-analyze", "verify", str(unit_for_tests(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    need("systemd-analyze")
    done = subprocess.run(["systemd-analyze", "security", "--offline=true",
                           str(unit_for_tests(tmp_path))], capture_output=True, text=True,
                          timeout=60)
    score = float(re.search(r"exposure level for .*: ([\d.]+)", done.stdout).group(1))
    assert score <= 2.0, done.stdout  # docs/systemd.md records the figure and each exposure


def test_the_unit_is_what_the_daemon_expects() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StartLimitBurst=",
                 "User=deskphone", "StateDirectory=deskphone", "LoadCredential=",
                 "SupplementaryGroups=gpio i2c spi audio", "NoNewPrivileges=yes",
                 "ExecStart=/opt/deskphone/venv/bin/deskphone run --config "
                 "/etc/deskphone/config.toml"):
        assert line in text, line


def shipped_files() -> list[Path]:
    """The image's sources: not what a build or a rehearsal made (image/build/, and the stage's
    files/ that files.sh fills from the repository)."""
    made = {IMAGE / "build", IMAGE / "stage-deskphone" / "01-deskphone" / "files"}
    found = []
    for folder, dirs, files in os.walk(IMAGE):
        dirs[:] = [d for d in dirs if Path(folder, d) not in made]  # never walk into a build
        found += [Path(folder, name) for name in files]
    return sorted(found)


def test_image_scripts_pass_shellcheck() -> None:
    need("shellcheck")
    scripts = [path for path in shipped_files() if path.suffix == ".sh"]
    assert IMAGE / "build.sh" in scripts and IMAGE / "rehearse.sh" in scripts
    done = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_image_ships_no_secret_and_builds_on_a_pinned_base() -> None:
    build = (IMAGE / "build.sh").read_text()
    ref = re.search(r"^PI_GEN_REF=(\S+)$", build, re.M)
    assert ref and re.fullmatch(r"\d{4}-\d{2}-\d{2}-raspios-bookworm-arm64", ref.group(1))
    config = (IMAGE / "config").read_text()
    assert "FIRST_USER_PASS" not in config and "ENABLE_SSH=0" in config
    for path in shipped_files():
        text = path.read_text(errors="replace")
        assert not re.search(r"(password|api_key|secret)\s*=\s*\"[^\"$]+\"", text, re.I), path
    assert (IMAGE / "stage-deskphone" / "EXPORT_IMAGE").exists()
    packages = (IMAGE / "stage-deskphone" / "00-packages" / "00-packages-nr").read_text()
    assert "python3-lgpio" in packages.split()


def test_build_refuses_an_overlay_that_is_not_a_name_before_touching_anything(
        tmp_path: Path) -> None:
    # The overlay lands in the image's config.txt: only a name, never a line of its own.
    env = {**os.environ, "WORK": str(tmp_path / "work")}
    for args in (["--audio-overlay", "wm8960-soundcard\ndtparam=i2c_arm=off"],
                 ["--audio-overlay", "../x"], ["--no-such-option"]):
        done = subprocess.run([str(IMAGE / "build.sh"), *args], capture_output=True,
                              text=True, timeout=30, env=env)
        assert done.returncode == 2, done
        assert "overlay name" in done.stderr or "usage:" in done.stderr, done.stderr
    assert not (tmp_path / "work").exists()
