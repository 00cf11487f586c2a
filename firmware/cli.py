"""The `deskphone` command: run, simulate, check-config, version.

Owns: arguments, logging set-up, exit codes (0 fine, 78 bad config, 1 failure to start). Never
touches: phone logic; it loads the config, builds the daemon (app.py) and waits for a stop.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from firmware import __version__, app, config
from firmware.daemon import Daemon
from firmware.frame import ScreenSink

DESCRIPTION = """\
Firmware of a Raspberry Pi SIP desk phone for offices that run Odoo.

commands:
  run            the phone on its hardware (the systemd service runs this); without a
                 usable config it shows what is wrong on its screen and waits for one
  simulate       the same firmware on simulated hardware: the screen in this terminal,
                 the keyboard as keypad (space = handset); --headless: control API only
  check-config   print the effective config (secrets masked), or every problem; exit 78
  version        print the version
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deskphone", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in (("run", "run the phone on its hardware"),
                       ("simulate", "run the phone on simulated hardware"),
                       ("check-config", "check the config file and print it, secrets masked")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--config", type=Path, default=config.DEFAULT_PATH,
                         help=f"the config file (default {config.DEFAULT_PATH})")
        cmd.add_argument("--log-level", default=os.environ.get("DESKPHONE_LOG", "info"),
                         choices=["debug", "info", "warning", "error"],
                         help="how much to log (default info, or $DESKPHONE_LOG)")
        if name == "simulate":
            cmd.add_argument("--headless", action="store_true",
                             help="no terminal screen or keyboard: drive it by the control API")
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "version":
        print(f"deskphone {__version__}")
        return 0
    try:
        cfg = config.load(args.config)
    except config.ConfigError as exc:
        print(f"deskphone: {args.config}: the config has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        if args.command == "run":
            # On the device: say so on the phone's own screen and wait for a good config.
            from firmware import setup

            _logging(args.log_level, None)
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            return setup.wait_for_config(args.config, exc.problems, stop)
        return config.EX_CONFIG
    if args.command == "check-config":
        print(config.render(cfg), end="")
        return 0
    interactive = args.command == "simulate" and not args.headless
    _logging(args.log_level, cfg if interactive else None)
    return _serve(cfg, interactive, hardware=args.command == "run")


def _logging(level: str, interactive_config: config.Config | None) -> None:
    """Log lines are `module: message` (journald adds the time). The terminal simulator writes
    them to a file so they do not scribble over the screen."""
    handler: logging.Handler
    if interactive_config is not None:
        path = interactive_config.state_dir() / "simulate.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(_NamedOnce("%(asctime)s %(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_NamedOnce("%(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class _NamedOnce(logging.Formatter):
    """A problem's text already names its part for the screen ("audio: no output device ..."):
    the log line names it once, not "audio: audio: ..."."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace(f"{record.name}: {record.name}: ", f"{record.name}: ", 1)


def _serve(cfg: config.Config, interactive: bool, hardware: bool = False) -> int:
    log = logging.getLogger("deskphone")
    screens: list[ScreenSink] = []
    extra = None
    if interactive:
        from firmware.hw.sim import TerminalKeys, TerminalScreen

        screens.append(TerminalScreen())

        def extra(daemon: Daemon) -> list[app.Adapter]:
            return [TerminalKeys(lambda: daemon.published.snapshot.state.off_hook,
                                 daemon.request_stop)]

    daemon, control = app.build(cfg, screens=screens, extra_adapters=extra,
                                with_hardware=hardware)
    daemon.install_signals()
    log.info("deskphone %s starting with %s%s", __version__, cfg.path,
             "".join(f" + {layer}" for layer in cfg.layers))
    for warning in cfg.warnings:
        log.warning("%s", warning)
    try:
        daemon.start()
    except Exception as exc:  # the adapters log their own causes
        log.error("cannot start: %s", exc)
        daemon.stop()
        return 1
    if control is not None:
        log.info("control API: http://%s:%d/state", control.config.host, control.port)
    try:
        daemon.wait()
    finally:
        daemon.stop()
    if daemon.restart_requested:
        # The same command again, in this process (systemd keeps its PID and its watchdog):
        # the config is read afresh.
        log.info("restarting")
        os.execv(sys.executable, [sys.executable, "-m", "firmware", *sys.argv[1:]])
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
