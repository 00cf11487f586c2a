"""The cable pulled and put back: "No network" meanwhile, registered again within 30 s of the
network returning, without a restart. Runs in a private network namespace so that taking its
loopback down touches nothing else on the machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.lab import need

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_network_gone_and_back() -> None:
    need("kamailio")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip for a network namespace")
    name = f"deskphone-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here ({made.stderr.strip()}): needs root "
                    f"or CAP_SYS_ADMIN")
    try:
        done = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-m",
                               "tests.system.netloss"], capture_output=True, text=True,
                              timeout=170, cwd=ROOT)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["registered_at_start"], result
    assert result["said_no_network"], result  # the screen and STATUS say "No network"
    assert result["said_not_registered"], result  # and stop claiming to be registered
    assert result["same_process"], result  # no restart
    assert result["registered_again_after_s"] is not None, result
    assert result["registered_again_after_s"] <= 30, result
    print(f"registered again {result['registered_again_after_s']} s after the network returned")
