"""Wiring: which adapters a `run` or a `simulate` uses, chosen by the config, never by accident.

Owns: building the Phone's settings from the config, and the list of adapters in start order
(network, audio, Odoo, SIP, display and keys, control API last so it answers once the rest is
up). Never touches: state or I/O of its own.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable

from firmware import __version__
from firmware.config import Config
from firmware.control import ControlServer
from firmware.daemon import Daemon
from firmware.events import Adapter
from firmware.frame import ScreenSink
from firmware.hw.audio import NullAudio
from firmware.network import NetworkMonitor
from firmware.odoo.offline import NoOdoo
from firmware.phone import Phone, Settings
from firmware.sip.ua import UserAgent
from firmware.systemd import Notifier

log = logging.getLogger("app")


def settings_from(config: Config) -> Settings:
    return Settings.of(config.phone, extension=config.sip.username, version=__version__,
                       screensaver_seconds=config.hardware.screensaver_seconds)


def make_audio(config: Config, device: bool = False) -> NullAudio:
    """The `[audio]` backend: null (nothing), wav (files) or pyaudio (sound cards by name);
    auto is pyaudio on the `device` (`deskphone run`), null in the simulator."""
    from firmware.hw.audio import RATE, WIDE, AudioEngine, PyAudioBackend, WavBackend

    a = config.audio
    backend = a.backend if a.backend != "auto" else ("pyaudio" if device else "null")
    # The handset's rate: 16 kHz on a phone that may speak wideband G.722, so such a call is
    # never resampled; 8 kHz on a G.711-only one, so none of its calls is.
    rate = WIDE if "G722" in config.sip.codecs else RATE
    if backend == "wav":
        return AudioEngine(WavBackend(a.mic, a.ear), region=config.phone.region)
    if backend == "pyaudio":
        ringer = PyAudioBackend(a.ringer, capture=False, rate=rate) if a.ringer else None
        return AudioEngine(PyAudioBackend(a.handset or "default", rate=rate), ringer,
                           region=config.phone.region)
    return NullAudio(rate)


def hardware(config: Config) -> tuple[list[Adapter], list[ScreenSink]]:
    """The Pi's own parts for `deskphone run`: GPIO, keypad, hook, lamps and the display."""
    from firmware.hw.display import Display, open_device
    from firmware.hw.hook import Hook
    from firmware.hw.keypad import Keypad
    from firmware.hw.lamps import Lamps
    from firmware.hw.pins import Gpio

    hw = config.hardware
    gpio = Gpio(hw.pin_factory)
    adapters: list[Adapter] = [
        gpio,
        Keypad(gpio.get, hw.keypad_rows, hw.keypad_cols, layout=hw.keypad_layout,
               drive=hw.keypad_drive, long_press_seconds=hw.long_press_seconds),
        Hook(gpio.get, hw.hook_pin, active=hw.hook_active, pull=hw.hook_pull),
    ]
    if hw.ringer_pin is not None or hw.led_pin is not None:
        adapters.append(Lamps(gpio.get, hw.ringer_pin, hw.led_pin))
    screens: list[ScreenSink] = []
    if hw.display != "none":
        display = Display(lambda: open_device(hw), hw.display_contrast)
        adapters.append(display)
        screens.append(display)
    return adapters, screens


def with_sip_from_odoo(config: Config) -> Config:
    """The config with the SIP extension and secret of the user's Odoo record (or the last
    good pair when Odoo is down); unchanged, and logged, when there is neither."""
    import dataclasses

    from firmware.odoo.provision import sip_credentials

    assert config.odoo is not None
    found = sip_credentials(config.odoo, config.state_dir())
    if found is None:
        return config
    username, secret = found
    return dataclasses.replace(config, sip=dataclasses.replace(config.sip, username=username,
                                                               password=secret))


POWER_ON_SECONDS = 300.0  # a system up for less than this has just been switched on


def uptime() -> float:
    """Seconds since the system started (its own boot, or its time namespace's)."""
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return math.inf


def start_delays(config: Config) -> tuple[float, float]:
    """(before the first REGISTER, before the first Odoo login): random, independent, within
    `[phone] start_jitter_seconds`, right after a power-on only; a restart asks at once."""
    jitter = config.phone.start_jitter_seconds
    if not jitter or uptime() >= POWER_ON_SECONDS:
        return 0.0, 0.0
    sip, odoo = random.uniform(0, jitter), random.uniform(0, jitter)
    log.info("just switched on: registering in %.1f s, Odoo in %.1f s (spread over %g s)",
             sip, odoo, jitter)
    return sip, odoo


def build(
    config: Config,
    *,
    with_hardware: bool = False,
    extra_adapters: Callable[[Daemon], list[Adapter]] | None = None,
    screens: list[ScreenSink] | None = None,
    notifier: Notifier | None = None,
) -> tuple[Daemon, ControlServer | None]:
    """A daemon with every adapter the config asks for (not started)."""
    if config.odoo is not None and config.odoo.sip_from_odoo:
        config = with_sip_from_odoo(config)
    phone = Phone(settings_from(config))
    audio = make_audio(config, device=with_hardware)
    sip_delay, odoo_delay = start_delays(config)
    adapters: list[Adapter] = [NetworkMonitor(config.sip.server, config.sip.port or 5060), audio]
    # Odoo's side starts before SIP: its start() hands the Phone what the phone kept (the
    # queue, the contacts, how many writes wait in the outbox) before anything comes from the
    # network, so no state says "registered" beside an outbox count not read yet.
    if config.odoo is None:
        adapters.append(NoOdoo("off"))
    else:
        from firmware.odoo.sync import OdooSync

        adapters.append(OdooSync(config.odoo, config.state_dir(), config.phone.region,
                                 start_delay=odoo_delay))
    adapters.append(UserAgent(config.sip, audio.source, audio.sink,
                              display_name=config.phone.name, start_delay=sip_delay,
                              audio_rate=audio.rate, audio_clock=audio.clock))
    sinks = list(screens or [])
    if with_hardware:
        parts, hw_screens = hardware(config)
        adapters += parts
        sinks += hw_screens
    daemon = Daemon(phone, adapters, sinks, notifier or Notifier())
    if extra_adapters is not None:
        daemon.adapters.extend(extra_adapters(daemon))
    control = None
    if config.control is not None:
        control = ControlServer(config.control, lambda: daemon.published)
        daemon.adapters.append(control)
    provisioner = None
    if config.provisioning is not None:
        from pathlib import Path

        from firmware.provisioning import Provisioner

        provisioner = Provisioner(config.provisioning, Path(config.path), config.state_dir(),
                                  lambda: daemon.published, daemon.request_restart)
        daemon.adapters.append(provisioner)
    if config.admin is not None:
        from firmware.admin.server import AdminServer

        daemon.adapters.append(AdminServer(config.admin, config, lambda: daemon.published,
                                           daemon.request_restart,
                                           provision_now=provisioner.poke if provisioner
                                           else None))
    return daemon, control
