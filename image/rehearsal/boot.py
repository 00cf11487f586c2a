"""Boot the rehearsal disk under qemu-system-aarch64 and read what check.sh reports.

Owns: the registrar the booted phone registers with (the lab's Kamailio on 127.0.0.1; qemu's
user network shows the host's loopback to the guest as 10.0.2.2), the qemu process (stopped by
its PID), the serial console log, and the verdict on what check.sh printed. Never touches: the
disk's contents (rehearse.sh makes them).

    python3 image/rehearsal/boot.py --work image/build/rehearsal
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.lab.lab import Kamailio, free_udp, stop_pid  # noqa: E402

BOOT_TIMEOUT = 20 * 60  # software-emulated arm64: a boot, five restarts, a watchdog timeout

# What a shipped phone must show, by the key check.sh reports it under.
EXPECT = {
    "fresh_state": r"^active/running result=success restarts=0$",
    "fresh_status": r"No config: put it in /etc/deskphone/config\.toml",
    "fresh_user": r"^deskphone$",
    "fresh_check_config": r"^rc=78 ",
    "imports": r"^lgpio pyaudio PIL luma\.oled gpiozero phonenumbers$",
    "ssh_password_auth": r"^passwordauthentication no$",
    "admin_password": r"^P$",  # pi-gen's random password: set, never empty
    "configured_check_config": r"^rc=0 secret_shown=0$",
    "config_to_registered_s": r"^\d+(\.\d+)?$",
    "secret_leaks": r"^state=0 journal=0$",
    # qemu's virt machine is no Pi: GPIO and the panel are missing, and named, but the unit
    # itself must not be what stops them: lgpio needs a writable working directory, gpiozero
    # /proc/cpuinfo to look for a Pi revision, ALSA /proc/asound and /dev/snd for the HDA card.
    "sound_cards": r"^ ?0 \[",
    "missing_credential_file_start": r"^rc=[1-9]",  # why one LoadCredential of the directory
    "with_procsubset_pid": r"/proc/cpuinfo hidden",  # why not ProcSubset=pid
    "without_procsubset": r"^[1-9]\d* sound devices, /proc/cpuinfo readable$",
    "problems": r"^(?!.*lgd-nfy)(?!.*audio: )(?=.*unable to locate Pi revision)"
                r".*display: /dev/i2c-1 not found",
    "kill9_to_registered_s": r"^\d+(\.\d+)?$",
    "frozen_to_registered_s": r"^\d+(\.\d+)?$",
    "watchdog_timeouts": r"^[1-9]",
    "update_to_registered_s": r"^\d+(\.\d+)?$",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    work: Path = args.work.resolve()
    console = work / "console.log"
    console.unlink(missing_ok=True)
    port = free_udp("127.0.0.1")
    kamailio = Kamailio(work / "kamailio", port=port, ip="127.0.0.1").start()
    cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
           "-display", "none", "-monitor", "none", "-serial", f"file:{console}", "-no-reboot",
           "-kernel", str(work / "vmlinuz"), "-initrd", str(work / "initrd.img"),
           "-append", f"root=/dev/vda rw console=ttyAMA0 panic=5 deskphone.sip=10.0.2.2:{port}",
           "-drive", f"if=none,file={work / 'disk.img'},format=raw,id=hd",
           "-device", "virtio-blk-pci,drive=hd",
           # No option ROM: the kernel boots directly, and Debian ships efi-virtio.rom only in
           # ipxe-qemu, a Recommends a clean machine (--no-install-recommends) does not have.
           "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile=",
           # A sound card (an HDA codec, heard by nobody) for the phone to open as its handset.
           "-audiodev", "none,id=snd0", "-device", "intel-hda",
           "-device", "hda-duplex,audiodev=snd0"]
    started = time.monotonic()
    qemu = subprocess.Popen(cmd, start_new_session=True)
    report: dict[str, str] = {}
    seen = 0
    try:
        while time.monotonic() - started < BOOT_TIMEOUT and "finished" not in report:
            if qemu.poll() is not None:
                break
            text = console.read_text(errors="replace") if console.exists() else ""
            for line in text[seen:].splitlines(keepends=True):
                if not line.endswith("\n"):
                    break
                seen += len(line)
                match = re.search(r"REHEARSAL (\S+) ?(.*)", line.rstrip("\r\n"))
                if match:
                    key, value = match.groups()
                    report[key] = value if key not in report else report[key] + " / " + value
                    print(f"{time.monotonic() - started:7.1f} s  {key}: {value}", flush=True)
            time.sleep(0.5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            qemu.wait(timeout=120)  # check.sh powers the VM off
    finally:
        stop_pid(qemu)
        kamailio.stop()
    took = time.monotonic() - started
    print(f"qemu ran {took:.0f} s")
    failures = [f"{key}: {report.get(key, '(not reported)')!r} does not match {pattern!r}"
                for key, pattern in EXPECT.items() if not re.search(pattern, report.get(key, ""))]
    (work / "rehearsal.txt").write_text(
        "".join(f"{key}: {value}\n" for key, value in report.items()) + f"qemu_s: {took:.0f}\n")
    for failure in failures:
        print("FAIL", failure)
    if failures:
        print(f"console: {console}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
