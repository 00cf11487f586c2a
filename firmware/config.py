"""Configuration: a TOML file -> a typed, frozen `Config`, or every problem in it at once.

Owns: the schema (sections, keys, types, defaults), reading secrets from their own files, and the
masked rendering that `deskphone check-config` prints. Never touches: the network, devices, or
any state beyond the file system reads it needs to load secrets.

Every problem is reported as `section.key: message` so an admin can fix a whole file in one go;
misspelt keys get a "did you mean". Secrets (the SIP password, the Odoo API key, the control
token) are wrapped in `Secret`, whose text is masked wherever it is printed or logged.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from firmware import numbers

DEFAULT_PATH = Path("/etc/deskphone/config.toml")
# systemd/deskphone.service: LoadCredential=deskphone:/etc/deskphone (see credential_copy).
CREDENTIAL_SOURCE = DEFAULT_PATH.parent
CREDENTIAL_ID = "deskphone"
HANDED_OVER_AT_START = "is new: the service gets it at its next start"
EX_CONFIG = 78  # sysexits.h: configuration error
MASK = "********"


class Secret:
    """A secret string whose text never shows in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for the protocol that needs it."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ConfigError(Exception):
    """The config cannot be used; `problems` lists every reason as `section.key: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class SipConfig:
    server: str
    username: str
    password: Secret
    port: int = 5060
    transport: str = "udp"
    auth_username: str | None = None
    domain: str = ""  # defaults to server
    bind: str | None = None  # "address[:port]"
    register_expires: int = 300
    tls_verify: bool = True
    tls_ca_file: str = ""  # a CA bundle for a PBX whose certificate a public CA did not sign
    no_rtp_seconds: int = 60

    @property
    def realm_domain(self) -> str:
        """The domain of our SIP URIs (the server's, unless configured)."""
        return self.domain or self.server


@dataclass(frozen=True)
class OdooConfig:
    url: str
    database: str
    login: str
    api_key: Secret
    poll_seconds: int = 60
    timeout_seconds: float = 10.0
    sip_from_odoo: bool = False


@dataclass(frozen=True)
class PhoneConfig:
    region: str | None = None
    name: str = "Desk phone"
    interdigit_seconds: float = 4.0
    offhook_seconds: float = 30.0
    ring_timeout_seconds: float = 120.0
    prompt_seconds: float = 30.0
    message_seconds: float = 4.0
    max_extension_digits: int = numbers.DEFAULT_MAX_EXTENSION_DIGITS
    reject_code: int = 486
    state_dir: str = ""  # "" = $STATE_DIRECTORY, else ~/.local/state/deskphone


@dataclass(frozen=True)
class ControlConfig:
    host: str
    port: int
    token: Secret | None = None


@dataclass(frozen=True)
class AudioConfig:
    # "auto": the sound cards (pyaudio) for `deskphone run` on the phone, none in the simulator.
    backend: str = "auto"
    handset: str | None = None
    ringer: str | None = None
    mic: str | None = None
    ear: str | None = None


DISPLAYS = (
    # luma.oled panels
    "ssd1306", "ssd1309", "ssd1305", "ssd1315", "sh1106", "sh1107", "ssd1322", "ssd1325",
    "ssd1327", "ssd1331", "ssd1351",
    # luma.emulator (need pygame) and luma's in-memory dummy; "none": no screen at all
    "capture", "pygame", "gifanim", "asciiart", "asciiblock", "dummy", "none",
)


@dataclass(frozen=True)
class HardwareConfig:
    pin_factory: str = "lgpio"
    keypad_layout: str = "4x4"
    keypad_rows: tuple[int, ...] = (5, 6, 13, 26)
    keypad_cols: tuple[int, ...] = (16, 22, 23, 24)
    keypad_drive: str = "rows"  # the lines driven low in turn; the others are read (pulled up)
    long_press_seconds: float = 0.8
    hook_pin: int = 17
    hook_active: str = "low"  # the level the pin reads while the handset is lifted
    hook_pull: str = ""  # "" = the pull that holds the inactive level (up for "low")
    ringer_pin: int | None = None
    led_pin: int | None = None
    display: str = "ssd1306"
    display_interface: str = "i2c"
    display_port: int = 1
    display_address: int = 0x3C
    display_rotate: int = 0
    display_contrast: int = 255
    screensaver_seconds: int = 300


@dataclass(frozen=True)
class Config:
    sip: SipConfig
    phone: PhoneConfig = field(default_factory=PhoneConfig)
    odoo: OdooConfig | None = None
    control: ControlConfig | None = None
    audio: AudioConfig = field(default_factory=AudioConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    path: str = ""

    def state_dir(self) -> Path:
        """Where the outbox and caches live: systemd's StateDirectory= when it gives one."""
        if self.phone.state_dir:
            return Path(self.phone.state_dir)
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        return Path.home() / ".local" / "state" / "deskphone"


# --------------------------------------------------------------------------- checking


class _Checker:
    """Reads one section, collecting problems instead of stopping at the first."""

    def __init__(self, section: str, raw: object, problems: list[str], base: Path) -> None:
        self.section = section
        self.raw: dict[str, Any] = raw if isinstance(raw, dict) else {}
        self.problems = problems
        self.base = base
        self.seen: set[str] = set()
        if not isinstance(raw, dict):
            problems.append(f"{section}: must be a table ([{section}])")

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.section}.{key}: {message}")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.seen.add(key)
        if key not in self.raw:
            if required:
                self.problem(key, "required")
            return default
        value = self.raw[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML ints are fine where floats are wanted; bools are not ints here.
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            self.problem(key, f"must be {_kind_name(kinds)}, not true/false")
            return default
        if not isinstance(value, kinds):
            self.problem(key, f"must be {_kind_name(kinds)}, not {type(value).__name__}")
            return default
        if check is not None:
            message = check(value)
            if message:
                self.problem(key, message)
                return default
        return value

    def secret(self, key: str, *, required: bool) -> Secret | None:
        """A secret given inline as `key` or in a file named by `key_file` (mode 600)."""
        inline = self.get(key, str, check=_non_empty)
        path = self.get(f"{key}_file", str, check=_non_empty)
        if inline is not None and path is not None:
            self.problem(key, f"give {key} or {key}_file, not both")
            return None
        if path is not None:
            return self._read_secret_file(f"{key}_file", path)
        if inline is None:
            if required and f"{key}_file" not in self.raw and key not in self.raw:
                self.problem(key, f"required (or {key}_file)")
            return None
        return Secret(inline)

    def _read_secret_file(self, key: str, name: str) -> Secret | None:
        # "${CREDENTIALS_DIRECTORY}/sip_password": systemd's LoadCredential= hands the service
        # root-only secrets in a directory it names in that variable.
        if "$" in name:
            expanded = os.path.expandvars(name)
            if "$" in expanded:
                self.problem(key, f"{name}: an environment variable in it is not set (outside "
                                  f"systemd, CREDENTIALS_DIRECTORY is unset)")
                return None
            name = expanded
        path = Path(name) if Path(name).is_absolute() else self.base / name
        try:
            info = path.stat()
        except FileNotFoundError:
            self.problem(key, f"{path} does not exist")
            return None
        except OSError as exc:
            self.problem(key, f"{path}: {exc.strerror}")
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.problem(key, f"{path} is readable by group or others: chmod 600 {path}")
            return None
        source = credential_copy(path) or path
        try:
            text = source.read_text(encoding="utf-8").strip()
        except PermissionError:
            if source.parent != CREDENTIAL_SOURCE:
                self.problem(key, f"{path} cannot be read: permission denied")
                return None
            # The service started before this root-only file existed: systemd hands it over
            # at the next start (the first-boot wait restarts for it, setup.py).
            self.problem(key, f"{path} {HANDED_OVER_AT_START}")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(key, f"{path} cannot be read: {exc}")
            return None
        if not text:
            self.problem(key, f"{path} is empty")
            return None
        return Secret(text)

    def finish(self, known: list[str]) -> None:
        """Flag keys nobody asked for, with a suggestion when one is close."""
        for key in self.raw:
            if key not in self.seen:
                self.problem(key, "unknown key" + _did_you_mean(key, known))


def credential_copy(path: Path) -> Path | None:
    """The copy systemd handed the service of a root-only file in /etc/deskphone, if any.

    The service runs as its own user and cannot read root's files; the unit's
    `LoadCredential=deskphone:/etc/deskphone` gives it each file of that directory as
    `$CREDENTIALS_DIRECTORY/deskphone_<name>`. The same config then works for the service and
    for `deskphone check-config` run by root, who reads the file itself.
    """
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory or path.parent != CREDENTIAL_SOURCE:
        return None
    copy = Path(directory) / f"{CREDENTIAL_ID}_{path.name}"
    return copy if copy.is_file() else None


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _non_empty(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}" + (
            _did_you_mean(value, list(choices)))
    return check


def _between(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"
    return check


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number (0-65535)"


def _host_port(value: str) -> str | None:
    try:
        split_host_port(value, 0)
    except ValueError as exc:
        return str(exc)
    return None


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """ "127.0.0.1:8089" -> ("127.0.0.1", 8089); "[::1]:5060"; "host" -> (host, default_port)."""
    text = text.strip()
    if not text:
        raise ValueError("must be address[:port]")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"{text!r} has no address")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"{port_text!r} is not a port number")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _region(value: str) -> str | None:
    return None if numbers.is_region(value) else f"{value!r} is not an ISO country code (e.g. 'BE')"


def _pins(value: list[Any]) -> str | None:
    if not value or not all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        return "must be a list of BCM pin numbers"
    if not all(0 <= p <= 27 for p in value):
        return "BCM pin numbers are 0-27"
    if len(set(value)) != len(value):
        return "lists a pin twice"
    return None


def _url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    return None


# --------------------------------------------------------------------------- loading

_SECTIONS = ["sip", "phone", "odoo", "control", "audio", "hardware"]


def load(path: Path) -> Config:
    """Read and check a config file; raise ConfigError with every problem found."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"config: {path} not found"]) from None
    except OSError as exc:
        raise ConfigError([f"config: {path}: {exc.strerror}"]) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"config: {path} is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config: {path}: {exc}"]) from None
    return parse(raw, base=path.parent, path=str(path))


def parse(raw: dict[str, Any], base: Path = Path("."), path: str = "") -> Config:
    """Check a parsed TOML document; raise ConfigError with every problem found."""
    problems: list[str] = []
    for name in raw:
        if name not in _SECTIONS:
            problems.append(f"{name}: unknown section" + _did_you_mean(name, _SECTIONS))

    sip = _sip(raw, problems, base)
    phone = _phone(raw.get("phone", {}), problems, base)
    odoo = _odoo(raw["odoo"], problems, base) if "odoo" in raw else None
    control = _control(raw["control"], problems, base) if "control" in raw else None
    audio = _audio(raw.get("audio", {}), problems, base)
    hardware = _hardware(raw.get("hardware", {}), problems, base)
    if problems or sip is None:
        raise ConfigError(problems)
    return Config(sip=sip, phone=phone, odoo=odoo, control=control, audio=audio,
                  hardware=hardware, path=path)


def _sip(raw: dict[str, Any], problems: list[str], base: Path) -> SipConfig | None:
    if "sip" not in raw:
        problems.extend(["sip.server: required", "sip.username: required",
                         "sip.password: required (or sip.password_file)"])
        return None
    c = _Checker("sip", raw["sip"], problems, base)
    # With [odoo] sip_from_odoo the extension and its secret come from the user's Odoo record.
    odoo = raw.get("odoo")
    from_odoo = isinstance(odoo, dict) and odoo.get("sip_from_odoo") is True
    out = dict(
        server=c.get("server", str, required=True, check=_non_empty),
        username=c.get("username", str, "" if from_odoo else None, required=not from_odoo,
                       check=_non_empty),
        password=c.secret("password", required=not from_odoo) or (Secret("") if from_odoo
                                                                   else None),
        port=c.get("port", int, 5060, check=_port),
        transport=c.get("transport", str, "udp", check=_one_of("udp", "tcp", "tls")),
        auth_username=c.get("auth_username", str, check=_non_empty),
        domain=c.get("domain", str, "", check=_non_empty),
        bind=c.get("bind", str, check=_host_port),
        register_expires=c.get("register_expires", int, 300, check=_between(30, 86400)),
        tls_verify=c.get("tls_verify", bool, True),
        tls_ca_file=c.get("tls_ca_file", str, "", check=_non_empty),
        no_rtp_seconds=c.get("no_rtp_seconds", int, 60, check=_between(5, 3600)),
    )
    c.finish([*_names(SipConfig), "password_file"])
    if any(out[k] is None for k in ("server", "username", "password")):
        return None
    return SipConfig(**out)


def _phone(raw: object, problems: list[str], base: Path) -> PhoneConfig:
    c = _Checker("phone", raw, problems, base)
    d = PhoneConfig()
    out = dict(
        region=c.get("region", str, None, check=_region),
        name=c.get("name", str, d.name),
        interdigit_seconds=c.get("interdigit_seconds", float, d.interdigit_seconds,
                                 check=_between(1, 30)),
        offhook_seconds=c.get("offhook_seconds", float, d.offhook_seconds,
                              check=_between(5, 600)),
        ring_timeout_seconds=c.get("ring_timeout_seconds", float, d.ring_timeout_seconds,
                                   check=_between(5, 3600)),
        prompt_seconds=c.get("prompt_seconds", float, d.prompt_seconds, check=_between(3, 600)),
        message_seconds=c.get("message_seconds", float, d.message_seconds,
                              check=_between(1, 60)),
        max_extension_digits=c.get("max_extension_digits", int, d.max_extension_digits,
                                   check=_between(1, 8)),
        reject_code=c.get("reject_code", int, d.reject_code,
                          check=lambda v: None if v in (480, 486, 603)
                          else "must be 486 (busy), 603 (decline) or 480 (unavailable)"),
        state_dir=c.get("state_dir", str, ""),
    )
    if out["region"]:
        out["region"] = out["region"].upper()
    c.finish(_names(PhoneConfig))
    return PhoneConfig(**out)


def _odoo(raw: object, problems: list[str], base: Path) -> OdooConfig | None:
    c = _Checker("odoo", raw, problems, base)
    out = dict(
        url=c.get("url", str, required=True, check=_url),
        database=c.get("database", str, required=True, check=_non_empty),
        login=c.get("login", str, required=True, check=_non_empty),
        api_key=c.secret("api_key", required=True),
        poll_seconds=c.get("poll_seconds", int, 60, check=_between(10, 3600)),
        timeout_seconds=c.get("timeout_seconds", float, 10.0, check=_between(1, 120)),
        sip_from_odoo=c.get("sip_from_odoo", bool, False),
    )
    c.finish([*_names(OdooConfig), "api_key_file"])
    if any(out[k] is None for k in ("url", "database", "login", "api_key")):
        return None
    out["url"] = str(out["url"]).rstrip("/")
    return OdooConfig(**out)


def _control(raw: object, problems: list[str], base: Path) -> ControlConfig | None:
    c = _Checker("control", raw, problems, base)
    listen = c.get("listen", str, "127.0.0.1:8089", check=_host_port)
    token = c.secret("token", required=False)
    c.finish(["listen", "token", "token_file"])
    if listen is None:
        return None
    host, port = split_host_port(listen, 8089)
    if token is None and not is_loopback(host) and "token" not in c.raw \
            and "token_file" not in c.raw:
        c.problem("token", f"required when control.listen ({host}) is not a loopback address")
    return ControlConfig(host=host, port=port, token=token)


def _audio(raw: object, problems: list[str], base: Path) -> AudioConfig:
    c = _Checker("audio", raw, problems, base)
    backend = c.get("backend", str, "auto", check=_one_of("auto", "null", "wav", "pyaudio"))
    out = dict(
        backend=backend,
        handset=c.get("handset", str),
        ringer=c.get("ringer", str),
        mic=c.get("mic", str),
        ear=c.get("ear", str),
    )
    if backend == "wav":
        for key in ("mic", "ear"):
            if out[key] is None and key not in c.raw:
                c.problem(key, "required when audio.backend is 'wav'")
    for key in ("mic", "ear"):
        if out[key] and not Path(out[key]).is_absolute():
            out[key] = str(base / out[key])
    c.finish(_names(AudioConfig))
    return AudioConfig(**out)


def _hardware(raw: object, problems: list[str], base: Path) -> HardwareConfig:
    c = _Checker("hardware", raw, problems, base)
    d = HardwareConfig()
    out = dict(
        pin_factory=c.get("pin_factory", str, d.pin_factory,
                          check=_one_of("lgpio", "rpigpio", "pigpio", "native", "mock")),
        keypad_layout=c.get("keypad_layout", str, d.keypad_layout, check=_one_of("4x4", "4x3")),
        keypad_rows=tuple(c.get("keypad_rows", list, list(d.keypad_rows), check=_pins)),
        keypad_cols=tuple(c.get("keypad_cols", list, list(d.keypad_cols), check=_pins)),
        keypad_drive=c.get("keypad_drive", str, d.keypad_drive, check=_one_of("rows", "cols")),
        long_press_seconds=c.get("long_press_seconds", float, d.long_press_seconds,
                                 check=_between(0.3, 3)),
        hook_pin=c.get("hook_pin", int, d.hook_pin, check=_between(0, 27)),
        hook_active=c.get("hook_active", str, d.hook_active, check=_one_of("low", "high")),
        hook_pull=c.get("hook_pull", str, d.hook_pull, check=_one_of("up", "down", "floating")),
        ringer_pin=c.get("ringer_pin", int, None, check=_between(0, 27)),
        led_pin=c.get("led_pin", int, None, check=_between(0, 27)),
        display=c.get("display", str, d.display,
                      check=_one_of(*DISPLAYS)),
        display_interface=c.get("display_interface", str, d.display_interface,
                                check=_one_of("i2c", "spi")),
        display_port=c.get("display_port", int, d.display_port, check=_between(0, 10)),
        display_address=c.get("display_address", int, d.display_address,
                              check=_between(0x03, 0x77)),
        display_rotate=c.get("display_rotate", int, d.display_rotate,
                             check=lambda v: None if v in (0, 1, 2, 3) else "must be 0-3"),
        display_contrast=c.get("display_contrast", int, d.display_contrast,
                               check=_between(0, 255)),
        screensaver_seconds=c.get("screensaver_seconds", int, d.screensaver_seconds,
                                  check=_between(0, 86400)),
    )
    layout_cols = 4 if out["keypad_layout"] == "4x4" else 3
    if "keypad_cols" in c.raw and len(out["keypad_cols"]) != layout_cols:
        c.problem("keypad_cols", f"the {out['keypad_layout']} layout has {layout_cols} columns")
    if "keypad_rows" in c.raw and len(out["keypad_rows"]) != 4:
        c.problem("keypad_rows", "a keypad has 4 rows")
    used: dict[int, str] = {}
    for key in ("keypad_rows", "keypad_cols", "hook_pin", "ringer_pin", "led_pin"):
        value = out[key]
        for pin in value if isinstance(value, tuple) else (value,):
            if pin is None:
                continue
            if pin in used and used[pin] != key:
                c.problem(key, f"GPIO {pin} is also {used[pin]}")
            used.setdefault(pin, key)
    c.finish(_names(HardwareConfig))
    if "keypad_cols" not in c.raw and layout_cols == 3:
        out["keypad_cols"] = out["keypad_cols"][:3]
    return HardwareConfig(**out)


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


# --------------------------------------------------------------------------- printing


def render(config: Config) -> str:
    """The effective config as TOML, secrets masked: what `check-config` prints."""
    lines = [f"# effective configuration of {config.path or '(built in)'}"]
    sections: list[tuple[str, object]] = [
        ("sip", config.sip), ("phone", config.phone), ("odoo", config.odoo),
        ("control", config.control), ("audio", config.audio), ("hardware", config.hardware),
    ]
    for name, section in sections:
        if section is None:
            lines.append(f"\n# [{name}] not configured")
            continue
        lines.append(f"\n[{name}]")
        if isinstance(section, ControlConfig):
            host = f"[{section.host}]" if ":" in section.host else section.host
            lines.append(f'listen = "{host}:{section.port}"')
            if section.token is not None:
                lines.append(f'token = "{MASK}"')
            continue
        for f in fields(section):  # type: ignore[arg-type]
            value = getattr(section, f.name)
            if isinstance(section, SipConfig) and f.name == "domain":
                value = section.realm_domain
            if value is None or value == "":
                continue
            if f.name == "display_address":
                lines.append(f"{f.name} = {value:#04x}")
                continue
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, Secret):
        return f'"{MASK}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
