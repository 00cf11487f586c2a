"""The pin factory: a problem opening it is named for the person who must fix it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPEN = ("from firmware.hw.pins import make_factory\n"
        "try:\n    make_factory('lgpio')\nexcept Exception as exc:\n    print(exc)\n")


def open_lgpio_in(cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", OPEN], cwd=cwd, capture_output=True, text=True,
                          timeout=30, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return done.stdout


def test_lgpio_in_a_directory_it_cannot_write_is_named_as_such(tmp_path: Path) -> None:
    # lgpio makes its pipes in the working directory; under systemd that was / (read-only with
    # ProtectSystem=strict), and every GPIO failed with "No such file: '.lgd-nfy-3'".
    if importlib.util.find_spec("lgpio") is None:  # importing it here would make its pipe here
        pytest.skip("lgpio has no wheel for this Python (apt's python3-lgpio serves 3.13)")
    said = open_lgpio_in(Path("/proc"))  # never writable, not even by root
    assert "lgpio cannot make its pipe in /proc" in said, said
    said = open_lgpio_in(tmp_path)  # writable: the next problem is that this is no Pi
    assert "lgpio cannot make its pipe" not in said and "pin factory" in said, said
