"""Configuration: a TOML file -> a typed, frozen `Config`, or every problem in it at once.

Owns: the schema (sections, keys, types, defaults), reading secrets from their own files, the
masked rendering that `deskphone check-config` prints and the commented example file. Never
touches: the network, devices, or any state beyond the file system reads it needs to load secrets.

Each setting is declared once, as a dataclass field made by `setting()`: its name, type and
default are the field's; its help text, range or choices, whether it is required, and what
config/example.toml shows are the field's metadata. The parser, `check-config`'s output, the
example file and the Phone's settings (phone.Settings extends PhoneConfig) all follow from it, so
a new key is one line in one section class. Cross-key rules (a pin used twice, wav needing its
files) live in the section's `after` check.

Every problem is reported as `section.key: message` so an admin can fix a whole file in one go;
misspelt keys get a "did you mean". Secrets (the SIP password, the Odoo API key, the control
token) are wrapped in `Secret`, whose text is masked wherever it is printed or logged.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import stat
import textwrap
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from firmware import layers, numbers

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

    def secret(self, key: str, *, required: bool, absent_section: bool = False) -> Secret | None:
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
                # With no section at all, the file key is named by its whole path.
                other = f"{self.section}.{key}_file" if absent_section else f"{key}_file"
                self.problem(key, f"required (or {other})")
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


def _stun_server(value: str) -> str | None:
    return _host_port(value) if value.strip() else None


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


def _https_url(value: str) -> str | None:
    if not value.startswith("https://"):
        return "must start with https:// (the files it serves hold passwords)"
    return None


# --------------------------------------------------------------------------- declaring settings


@dataclass(frozen=True)
class Rule:
    """What a setting means beyond its name, type and default (the dataclass field's)."""

    help: str
    choices: tuple[str, ...] = ()
    between: tuple[float, float] | None = None
    check: Callable[[Any], str | None] | None = None
    # True, or a test of the whole document ("required unless [odoo] sip_from_odoo").
    required: bool | Callable[[dict[str, Any]], bool] = False
    convert: Callable[[Any], Any] | None = None  # applied to a valid value (e.g. upper case)
    example: object = None  # what config/example.toml shows, when not the default
    commented: bool = False  # config/example.toml shows the key as a comment
    shown: Callable[[Any], object] | None = None  # check-config's value, from the section
    hex: bool = False  # printed as 0x.. (an I2C address)


def setting(default: Any = MISSING, *, help: str, **rule: Any) -> Any:
    """One setting: a dataclass field whose metadata is its `Rule`."""
    meta = {"rule": Rule(help=help, **rule)}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def rule_of(f: Any) -> Rule:
    rule: Rule = f.metadata["rule"]
    return rule


PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock")
"""gpiozero's pin factories by the names `[hardware] pin_factory` takes (hw/pins.py loads them)."""
PANELS = ("ssd1306", "ssd1309", "ssd1305", "ssd1315", "sh1106", "sh1107", "ssd1322", "ssd1325",
          "ssd1327", "ssd1331", "ssd1351")
"""luma.oled's panels."""
EMULATORS = ("capture", "pygame", "gifanim", "asciiart", "asciiblock")
"""luma.emulator's devices (they need pygame)."""
DISPLAYS = (*PANELS, *EMULATORS, "dummy", "none")
"""Every `[hardware] display`: a panel, an emulator, luma's in-memory dummy, or no screen."""


CODECS_DEFAULT = ("G722", "PCMU", "PCMA")
"""`[sip] codecs` unless set: wideband first, as Yealink and Snom phones offer them."""


def _codec_list(value: list[Any]) -> str | None:
    known = ", ".join(f'"{c}"' for c in CODECS_DEFAULT)
    if not value:
        return f"must name at least one of {known}"
    for name in value:
        if name not in CODECS_DEFAULT:
            return f"{name!r} is not a codec the phone has (it has {known})"
    if len(set(value)) != len(value):
        return "names a codec twice"
    return None


def _sip_from_odoo(doc: dict[str, Any]) -> bool:
    odoo = doc.get("odoo")
    return isinstance(odoo, dict) and odoo.get("sip_from_odoo") is True


def _needs_own_sip_credentials(doc: dict[str, Any]) -> bool:
    # With [odoo] sip_from_odoo the extension and its secret come from the user's Odoo record.
    return not _sip_from_odoo(doc)


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class SipConfig:
    server: str = setting(required=True, check=_non_empty, example="pbx.example.com",
                          help="the registrar / proxy of your VoIP provider")
    username: str = setting(required=_needs_own_sip_credentials, check=_non_empty,
                            example="101", help="the extension")
    password: Secret = setting(required=_needs_own_sip_credentials,
                               example="/etc/deskphone/sip_password",
                               help='chmod 600; or: password = "..."')
    port: int | None = setting(None, check=_port, example=5060, commented=True,
                               help="the server's SIP port; absent: DNS (NAPTR, SRV, A/AAAA)")
    transport: str = setting("udp", choices=("udp", "tcp", "tls"),
                             help='"udp" | "tcp" | "tls" (tls verifies the certificate)')
    auth_username: str | None = setting(None, check=_non_empty, example="101", commented=True,
                                        help="when the provider's auth name differs from the "
                                             "extension")
    domain: str = setting("", check=_non_empty, example="example.com", commented=True,
                          shown=lambda sip: sip.realm_domain,
                          help="the domain of SIP URIs; defaults to server")
    bind: str | None = setting(None, check=_host_port, example="192.168.1.20:5060",
                               commented=True,
                               help="local address[:port]; default: the route to the server")
    register_expires: int = setting(300, between=(30, 86400),
                                    help="seconds a registration lasts (refreshed at half)")
    keepalive_seconds: int = setting(25, between=(0, 3600),
                                     help="ping the server this often (keeps a NAT open; 0: off)")
    mwi: bool = setting(True, help="subscribe to the voicemail count (message-summary)")
    stun_server: str = setting("", check=_stun_server, example="stun.example.com:3478",
                               commented=True,
                               help='ask it our public address first ("": none)')
    tls_verify: bool = setting(True, help="check the server's certificate (tls)")
    tls_ca_file: str = setting("", check=_non_empty, example="/etc/deskphone/pbx-ca.pem",
                               commented=True,
                               help="a CA for a PBX with a private certificate")
    codecs: tuple[str, ...] = setting(CODECS_DEFAULT, check=_codec_list,
                                      help='audio codecs, best first: "G722" (wideband, "HD"), '
                                           '"PCMU", "PCMA"')
    srtp: str = setting("off", choices=("off", "optional", "required"),
                        help='encrypt calls\' media (SRTP, keys in SDP): "optional" offers it '
                             'and takes it, "required" refuses calls without it')
    srtp_over_udp: bool = setting(False, help="let SRTP keys travel over UDP or TCP signalling "
                                              "(insecure; otherwise only over tls)")
    no_rtp_seconds: int = setting(60, between=(5, 3600),
                                  help="end a call whose far end went silent for this long")

    @property
    def realm_domain(self) -> str:
        """The domain of our SIP URIs (the server's, unless configured); an IPv6 address in
        brackets, as a SIP URI writes it."""
        domain = self.domain or self.server
        return f"[{domain}]" if domain.count(":") > 1 and not domain.startswith("[") else domain


@dataclass(frozen=True)
class OdooConfig:
    url: str = setting(required=True, check=_url, convert=lambda url: url.rstrip("/"),
                       example="https://odoo.example.com", help="the Odoo server")
    database: str = setting(required=True, check=_non_empty, example="example",
                            help="the Odoo database")
    login: str = setting(required=True, check=_non_empty, example="alice@example.com",
                         help="the user whose queue and contacts the phone shows")
    api_key: Secret = setting(required=True, example="/etc/deskphone/odoo_api_key",
                              help="Preferences -> Account Security -> New API Key")
    poll_seconds: int = setting(60, between=(10, 3600),
                                help="idle, one request this often: the queue and the contacts "
                                     "in turn (the queue also when opened, after a call)")
    timeout_seconds: float = setting(10.0, between=(1, 120),
                                     help="a request taking longer counts as Odoo down")
    sip_from_odoo: bool = setting(False, example=True, commented=True,
                                  help="the extension and SIP password from the user's Odoo "
                                       "record")


def _voicemail(value: str) -> str | None:
    if value and not all(c in "+0123456789*#" for c in value):
        return "must be a number the keypad can dial (digits, *, # and a leading +)"
    return None


@dataclass(frozen=True)
class PhoneConfig:
    region: str | None = setting(None, check=_region, convert=str.upper, example="BE",
                                 help="numbers typed without + are numbers of this country")
    name: str = setting("Desk phone", example="Reception", help="shown on the idle screen")
    interdigit_seconds: float = setting(4.0, between=(1, 30),
                                        help="off hook: dial this long after the last digit")
    offhook_seconds: float = setting(30.0, between=(5, 600),
                                     help='off hook with no digits: "Replace the handset"')
    ring_timeout_seconds: float = setting(120.0, between=(5, 3600),
                                          help="stop ringing (480) after this long")
    prompt_seconds: float = setting(30.0, between=(3, 600),
                                    help='"Mark call done?" keeps the activity after this long')
    message_seconds: float = setting(4.0, between=(1, 60), help="how long a message line stays")
    max_extension_digits: int = setting(numbers.DEFAULT_MAX_EXTENSION_DIGITS, between=(1, 8),
                                        help="up to this many digits is an extension")
    reject_code: int = setting(486, check=lambda v: None if v in (480, 486, 603)
                               else "must be 486 (busy), 603 (decline) or 480 (unavailable)",
                               help="C on a ringing call: 486 busy, 603 decline, "
                                    "480 unavailable")
    call_waiting: bool = setting(True, help="a call during a call waits (tone, D answers); "
                                            "false: 486 busy")
    voicemail: str = setting("", check=_voicemail, example="*97",
                             help='the number long 1 calls ("" = none)')
    start_jitter_seconds: float = setting(20.0, between=(0, 600),
                                          help="after a power-on (up < 5 min), the first "
                                               "REGISTER and Odoo login wait a random part of "
                                               "this: an office back from a power cut does not "
                                               "all ask at once")
    state_dir: str = setting("", example="/var/lib/deskphone", commented=True,
                             help="default: $STATE_DIRECTORY (systemd), else ~/.local/state")


@dataclass(frozen=True)
class ControlConfig:
    listen: str = setting("127.0.0.1:8089", check=_host_port,
                          help="remove the section to turn the API off")
    token: Secret | None = setting(None, example="/etc/deskphone/control_token", commented=True,
                                   help="required when listen is not loopback")

    @property
    def host(self) -> str:
        return split_host_port(self.listen, 8089)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen, 8089)[1]


@dataclass(frozen=True)
class AdminConfig:
    listen: str = setting("127.0.0.1:8080", check=_host_port,
                          help='the web page; "0.0.0.0:80" for the office; no section: off')
    password: Secret | None = setting(None, example="/etc/deskphone/admin_password",
                                      commented=True,
                                      help="required when listen is not loopback (user admin)")

    @property
    def host(self) -> str:
        return split_host_port(self.listen, 8080)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen, 8080)[1]


@dataclass(frozen=True)
class ProvisioningConfig:
    url: str = setting(required=True, check=_https_url, convert=lambda url: url.rstrip("/"),
                       example="https://provisioning.example.com/deskphone", commented=True,
                       help="fetch <url>/<mac>.toml, then <url>/default.toml; a $MAC in it "
                            "names this phone's file itself")
    interval_hours: float = setting(24.0, between=(0.01, 8760), commented=True,
                                    help="fetch again this often")
    ca_file: str = setting("", check=_non_empty, example="/etc/deskphone/provisioning-ca.pem",
                           commented=True,
                           help="a CA for a server with a private certificate")


@dataclass(frozen=True)
class AudioConfig:
    backend: str = setting("auto", choices=("auto", "null", "wav", "pyaudio"),
                           help='sound cards on the phone, none in the simulator; or "pyaudio", '
                                '"null" (no sound), "wav" (files)')
    handset: str | None = setting(None, example="USB Audio", commented=True,
                                  help="device names as PortAudio lists them")
    ringer: str | None = setting(None, example="bcm2835 Headphones", commented=True,
                                 help="a second card for the ringtone; else it rings in the "
                                      "handset")
    mic: str | None = setting(None, example="voice.wav", commented=True,
                              help='backend "wav": a WAV (8 kHz mono 16-bit) as the microphone')
    ear: str | None = setting(None, example="heard.wav", commented=True,
                              help='backend "wav": everything the earpiece plays, written live')


@dataclass(frozen=True)
class HardwareConfig:
    pin_factory: str = setting("lgpio", choices=PIN_FACTORIES, help='"mock" for tests')
    keypad_layout: str = setting("4x4", choices=("4x4", "4x3"), help='or "4x3"')
    keypad_rows: tuple[int, ...] = setting((5, 6, 13, 26), check=_pins, help="BCM numbers")
    keypad_cols: tuple[int, ...] = setting((16, 22, 23, 24), check=_pins,
                                           help="BCM numbers (3 for the 4x3 layout)")
    keypad_drive: str = setting("rows", choices=("rows", "cols"),
                                help='rows driven low in turn, columns read; "cols" the reverse')
    long_press_seconds: float = setting(0.8, between=(0.3, 3), help='hold 0 this long for "+"')
    hook_pin: int = setting(17, between=(0, 27), help="BCM number of the hook switch")
    hook_active: str = setting("low", choices=("low", "high"),
                               help="the level when the handset is lifted")
    hook_pull: str = setting("", choices=("up", "down", "floating"), example="up",
                             commented=True,
                             help="default: the pull that holds the other level")
    ringer_pin: int | None = setting(None, between=(0, 27), example=12, commented=True,
                                     help="an active buzzer (docs/hardware.md)")
    led_pin: int | None = setting(None, between=(0, 27), example=25, commented=True,
                                  help="the message / missed-call lamp")
    display: str = setting("ssd1306", choices=DISPLAYS,
                           help='a luma panel (ssd1306, sh1106, ssd1309 ...), a luma emulator '
                                '(capture, pygame ...), "dummy" or "none"')
    display_interface: str = setting("i2c", choices=("i2c", "spi"), help="the panel's bus")
    display_port: int = setting(1, between=(0, 10), help="the bus number (i2c-1 on a Pi)")
    display_address: int = setting(0x3C, between=(0x03, 0x77), hex=True,
                                    help="the panel's I2C address")
    display_rotate: int = setting(0, check=lambda v: None if v in (0, 1, 2, 3)
                                  else "must be 0-3", help="0-3, quarter turns")
    display_contrast: int = setting(255, between=(0, 255), help="0-255")
    screensaver_seconds: int = setting(300, between=(0, 86400),
                                       help="dim the screen after this long untouched; "
                                            "0 = never")


@dataclass(frozen=True)
class Config:
    sip: SipConfig
    phone: PhoneConfig = field(default_factory=PhoneConfig)
    odoo: OdooConfig | None = None
    control: ControlConfig | None = None
    admin: AdminConfig | None = None
    provisioning: ProvisioningConfig | None = None
    audio: AudioConfig = field(default_factory=AudioConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    path: str = ""
    layers: tuple[str, ...] = ()  # the layer files merged over `path` (layers.py)
    warnings: tuple[str, ...] = ()  # layers left out, and why

    def state_dir(self) -> Path:
        """Where the outbox, caches and config layers live."""
        return state_dir_of(self.phone.state_dir, self.path)


SERVICE_STATE_DIR = Path("/var/lib/deskphone")  # systemd's StateDirectory=deskphone


def state_dir_of(configured: str, path: str = "") -> Path:
    """`[phone] state_dir`, else systemd's StateDirectory= when it gives one, else the service's
    own when this is the service's config (root running `check-config` sees the same layers),
    else the user's."""
    if configured:
        return Path(configured)
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if path and Path(path) == DEFAULT_PATH and SERVICE_STATE_DIR.is_dir():
        return SERVICE_STATE_DIR
    return Path.home() / ".local" / "state" / "deskphone"


# --------------------------------------------------------------------------- cross-key checks


def _sip_after(c: _Checker, out: dict[str, Any]) -> None:
    if out["srtp"] == "required" and out["transport"] != "tls" and not out["srtp_over_udp"]:
        c.problem("srtp", "\"required\" needs transport = \"tls\" (the keys travel in the "
                          "signalling), or srtp_over_udp = true (insecure)")


def _control_after(c: _Checker, out: dict[str, Any]) -> None:
    if out["listen"] is None:
        return
    host, _ = split_host_port(out["listen"], 8089)
    if out["token"] is None and not is_loopback(host) and "token" not in c.raw \
            and "token_file" not in c.raw:
        c.problem("token", f"required when control.listen ({host}) is not a loopback address")


def _admin_after(c: _Checker, out: dict[str, Any]) -> None:
    host, _ = split_host_port(out["listen"], 8080)
    if out["password"] is None and not is_loopback(host) and "password" not in c.raw \
            and "password_file" not in c.raw:
        c.problem("password", f"required when admin.listen ({host}) is not a loopback address")


def _audio_after(c: _Checker, out: dict[str, Any]) -> None:
    if out["backend"] == "wav":
        for key in ("mic", "ear"):
            if out[key] is None and key not in c.raw:
                c.problem(key, "required when audio.backend is 'wav'")
    for key in ("mic", "ear"):
        if out[key] and not Path(out[key]).is_absolute():
            out[key] = str(c.base / out[key])


def _hardware_after(c: _Checker, out: dict[str, Any]) -> None:
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
    if "keypad_cols" not in c.raw and layout_cols == 3:
        out["keypad_cols"] = out["keypad_cols"][:3]


@dataclass(frozen=True)
class Section:
    """One `[section]` of the file: its schema class, whether it must, may or need not be
    there (`presence`: "required" | "optional" = None when absent | "default" = defaults when
    absent), and its cross-key check."""

    name: str
    schema: type
    presence: str
    after: Callable[[_Checker, dict[str, Any]], None] | None = None


SECTIONS: tuple[Section, ...] = (
    Section("sip", SipConfig, "required", _sip_after),
    Section("phone", PhoneConfig, "default"),
    Section("odoo", OdooConfig, "optional"),
    Section("control", ControlConfig, "optional", _control_after),
    Section("admin", AdminConfig, "optional", _admin_after),
    Section("provisioning", ProvisioningConfig, "optional"),
    Section("audio", AudioConfig, "default", _audio_after),
    Section("hardware", HardwareConfig, "default", _hardware_after),
)


# --------------------------------------------------------------------------- loading


def load(path: Path, *, with_layers: bool = True) -> Config:
    """Read and check a config file with its layers (provisioning, the web page) merged over
    it; raise ConfigError with every problem found. Layers that make a good file bad are left
    out, and `warnings` says so: the phone keeps working on the file alone."""
    raw = read_raw(path)
    if not with_layers:
        return parse(raw, base=path.parent, path=str(path))
    stack, used, warnings = layered(raw, path)
    # The whole stack; failing that, without the top layer, and so on down to the file alone
    # (which raises if it is bad itself).
    for top in range(len(stack), -1, -1):
        try:
            cfg = parse(layers.merge(raw, *stack[:top]), base=path.parent, path=str(path))
        except ConfigError as exc:
            if top == 0:
                raise
            warnings.append(f"config: {used[top - 1]} not used: " + "; ".join(exc.problems))
            continue
        return replace(cfg, layers=tuple(used[:top]), warnings=tuple(warnings))
    raise AssertionError("unreachable")


def layered(raw: dict[str, Any], path: Path) -> tuple[list[layers.Doc], list[str], list[str]]:
    """The upper layers of the file `raw` was read from: (documents, their paths, warnings
    about those that cannot be read)."""
    directory = _raw_state_dir(raw, path)
    stack: list[layers.Doc] = []
    used: list[str] = []
    warnings: list[str] = []
    for _, layer in layers.paths(directory):
        try:
            doc = layers.read(layer)
        except layers.LayerError as exc:
            warnings.append(f"config: {exc}: left out")
            continue
        if doc:
            stack.append(doc)
            used.append(str(layer))
    return stack, used, warnings


def provisioning_of(path: Path) -> tuple[ProvisioningConfig, Path] | None:
    """`[provisioning]` and the state directory of a file that is not usable as a whole (a
    fresh card may hold only the provisioning URL): None when that section is absent or bad."""
    try:
        raw = read_raw(path)
    except ConfigError:
        return None
    if not isinstance(raw.get("provisioning"), dict):
        return None
    problems: list[str] = []
    section = next(s for s in SECTIONS if s.name == "provisioning")
    settings = _read(section, raw, problems, path.parent)
    if problems or settings is None:
        return None
    return settings, _raw_state_dir(raw, path)


def _raw_state_dir(raw: dict[str, Any], path: Path) -> Path:
    """The state directory a file names, read before the file is known to be valid."""
    phone = raw.get("phone")
    configured = phone.get("state_dir") if isinstance(phone, dict) else None
    return state_dir_of(configured if isinstance(configured, str) else "", str(path))


def read_raw(path: Path) -> dict[str, Any]:
    """The file's TOML document, or ConfigError."""
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
    return raw


def parse(raw: dict[str, Any], base: Path = Path("."), path: str = "") -> Config:
    """Check a parsed TOML document; raise ConfigError with every problem found."""
    problems: list[str] = []
    names = [s.name for s in SECTIONS]
    for name in raw:
        if name not in names:
            problems.append(f"{name}: unknown section" + _did_you_mean(name, names))
    parts: dict[str, Any] = {}
    for section in SECTIONS:
        if section.name not in raw and section.presence == "optional":
            parts[section.name] = None
            continue
        parts[section.name] = _read(section, raw, problems, base)
    if problems or parts["sip"] is None:
        raise ConfigError(problems)
    return Config(**parts, path=path)


def _read(section: Section, doc: dict[str, Any], problems: list[str], base: Path) -> Any:
    """One section: every key checked against its declaration, problems collected."""
    c = _Checker(section.name, doc.get(section.name, {}), problems, base)
    absent = section.name not in doc
    hints = typing.get_type_hints(section.schema)
    out: dict[str, Any] = {}
    known: list[str] = []
    missing = False
    for f in fields(section.schema):
        rule = rule_of(f)
        kinds, secret = _kinds(hints[f.name])
        required = rule.required(doc) if callable(rule.required) else rule.required
        known.append(f.name)
        if secret:
            known.append(f"{f.name}_file")
            value: Any = c.secret(f.name, required=required, absent_section=absent)
        else:
            default = f.default if f.default is not MISSING else None
            if isinstance(default, tuple):
                default = list(default)
            value = c.get(f.name, kinds, default, required=required, check=_check_of(rule))
        if value is not None and list in kinds:
            value = tuple(value)
        if value is not None and rule.convert is not None:
            value = rule.convert(value)
        if value is None and f.default is MISSING:
            if required:
                missing = True  # already reported
            else:
                value = Secret("") if secret else ""  # given by another part (sip_from_odoo)
        out[f.name] = value
    if section.after is not None:
        section.after(c, out)
    c.finish(known)
    return None if missing else section.schema(**out)


def _kinds(hint: Any) -> tuple[tuple[type, ...], bool]:
    """The TOML types a field's annotation takes, and whether it is a secret."""
    if isinstance(hint, types.UnionType):  # `str | None`: an optional setting
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    base = typing.get_origin(hint) or hint
    if base is Secret:
        return (str,), True
    if base is tuple:
        return (list,), False
    return (base,), False


def _check_of(rule: Rule) -> Callable[[Any], str | None] | None:
    if rule.choices:
        return _one_of(*rule.choices)
    if rule.between is not None:
        return _between(*rule.between)
    return rule.check


# --------------------------------------------------------------------------- printing


def render(config: Config) -> str:
    """The effective config as TOML, secrets masked: what `check-config` prints."""
    lines = [f"# effective configuration of {config.path or '(built in)'}"]
    lines += [f"# with {layer} over it" for layer in config.layers]
    lines += [f"# {warning}" for warning in config.warnings]
    for section in SECTIONS:
        values = getattr(config, section.name)
        if values is None:
            lines.append(f"\n# [{section.name}] not configured")
            continue
        lines.append(f"\n[{section.name}]")
        for f in fields(values):
            rule = rule_of(f)
            value = rule.shown(values) if rule.shown else getattr(values, f.name)
            if value is None or value == "":
                continue
            if rule.hex:
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


EXAMPLE_HEADER = """\
# /etc/deskphone/config.toml: every key with its default or an example.
# `deskphone check-config` prints what the phone makes of it (secrets masked).
# Made from the schema in firmware/config.py: python -m firmware.config > config/example.toml
"""
COMMENT_COLUMN = 33


def example() -> str:
    """config/example.toml: every key of every section with its help, from the declarations."""
    out = [EXAMPLE_HEADER.rstrip("\n")]
    for section in SECTIONS:
        # A section whose every key is a comment is one too: an empty table would turn it on.
        off = all(rule_of(f).commented for f in fields(section.schema))
        out.append(f"\n{'# ' if off else ''}[{section.name}]")
        for f in fields(section.schema):
            rule = rule_of(f)
            value = rule.example if rule.example is not None else f.default
            key = f.name
            if _kinds(typing.get_type_hints(section.schema)[f.name])[1]:
                key = f"{f.name}_file"
            text = f"0x{value:02X}" if rule.hex else _toml_value(value)
            line = ("# " if rule.commented else "") + f"{key} = {text}"
            width = 100 - max(COMMENT_COLUMN, len(line) + 1) - 2
            parts = textwrap.wrap(rule.help, width=width)
            out.append(f"{line:<{COMMENT_COLUMN - 1}} # {parts[0]}")
            out.extend(f"{'':<{COMMENT_COLUMN - 1}} # {more}" for more in parts[1:])
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(example(), end="")
