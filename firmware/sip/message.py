"""SIP messages: a tolerant parser and a builder (RFC 3261 section 7).

Owns: bytes <-> `Message` (start line, headers in order with repeats kept, body), name-addr and
URI parsing, header parameters, and digest authorization (RFC 2617 / 8760 MD5 and SHA-256).
Never touches: sockets, timers or call state.

Tolerant where real software differs (an empty `Supported:`, compact header names, user parts
with `-`, folded lines, missing Content-Length on UDP) and strict where being lax would be
unsafe: a message without a start line, Call-ID, CSeq, From, To or Via raises `ParseError`, which
the transport counts and drops. No input, however malformed, raises anything else.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

COMPACT = {"i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
           "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
           "v": "Via", "r": "Refer-To", "b": "Referred-By", "o": "Event", "u": "Allow-Events",
           "x": "Session-Expires"}
CANONICAL = {name.lower(): name for name in (
    "Call-ID", "Contact", "Content-Encoding", "Content-Length", "Content-Type", "From", "To",
    "Via", "CSeq", "Max-Forwards", "Record-Route", "Route", "Refer-To", "Referred-By", "Event",
    "Subscription-State", "WWW-Authenticate", "Proxy-Authenticate", "Authorization",
    "Proxy-Authorization", "Expires", "User-Agent", "Allow", "Supported", "Require", "Server",
    "Allow-Events", "Accept", "Subject", "Min-Expires", "Reason", "Warning", "Retry-After",
    "Session-Expires", "Min-SE", "RSeq", "RAck", "Unsupported")}
MAX_SIZE = 65535
REQUIRED = ("Call-ID", "CSeq", "From", "To", "Via")


class ParseError(ValueError):
    """Not a SIP message we can act on; the text says why (for the log)."""


# RFC 3261 25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
# Headers that may appear once only; a second copy makes the message ambiguous.
SINGLE = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type")
# Headers whose values are name-addr or addr-spec.
ADDRESSES = ("From", "To", "Contact", "Route", "Record-Route", "Reply-To")


def canonical(name: str) -> str:
    name = name.strip()
    if len(name) == 1 and name.lower() in COMPACT:
        return COMPACT[name.lower()]
    return CANONICAL.get(name.lower(), name)


@dataclass
class Message:
    method: str = ""  # requests
    uri: str = ""  # requests
    status: int = 0  # responses
    reason: str = ""  # responses
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str, default: str = "") -> str:
        name = canonical(name)
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        """Every value of a header, comma-separated lists split (Via, Route, Record-Route)."""
        name = canonical(name)
        out: list[str] = []
        for key, value in self.headers:
            if key == name:
                out.extend(split_commas(value))
        return out

    def set(self, name: str, value: str) -> None:
        name = canonical(name)
        self.headers = [(k, v) for k, v in self.headers if k != name]
        self.headers.append((name, value))

    def remove(self, name: str) -> None:
        name = canonical(name)
        self.headers = [(k, v) for k, v in self.headers if k != name]

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical(name), value))

    @property
    def call_id(self) -> str:
        return self.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.get("CSeq").strip().partition(" ")
        return int(number), method.strip()  # methods are case-sensitive (RFC 3261 7.1)

    @property
    def branch(self) -> str:
        vias = self.all("Via")
        return params(vias[0]).get("branch", "") if vias else ""

    def from_tag(self) -> str:
        return params(self.get("From")).get("tag", "")

    def to_tag(self) -> str:
        return params(self.get("To")).get("tag", "")

    def encode(self) -> bytes:
        first = f"{self.method} {self.uri} SIP/2.0" if self.is_request else \
            f"SIP/2.0 {self.status} {self.reason}"
        lines = [first] + [f"{k}: {v}" for k, v in self.headers if k != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def summary(self) -> str:
        start = f"{self.method} {self.uri}" if self.is_request else f"{self.status} {self.reason}"
        return f"{start} (CSeq {self.get('CSeq')}, Call-ID {self.call_id[:16]})"


def parse(data: bytes) -> Message:
    """Bytes off the wire -> Message, or ParseError. Never any other exception."""
    try:
        return _parse(data)
    except ParseError:
        raise
    except Exception as exc:  # a parser bug must not kill the receive loop either
        raise ParseError(f"unparseable: {type(exc).__name__}") from exc


def _parse(data: bytes) -> Message:
    if len(data) > MAX_SIZE:
        raise ParseError(f"too large ({len(data)} bytes)")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("headers are not UTF-8") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)  # keep-alive CRLFs
    if not lines:
        raise ParseError("empty")
    first = lines.pop(0)
    msg = Message()
    parts = first.split(" ", 2)
    if first.startswith("SIP/2.0 "):
        first = first.strip()
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise ParseError(f"bad status line {first[:40]!r}")
        msg.status = int(parts[1])
        msg.reason = parts[2] if len(parts) > 2 else ""
    else:
        # Method SP Request-URI SP SIP/2.0, single spaces, nothing after (RFC 3261 25.1;
        # RFC 4475 3.1.2.8-10); the method is a case-sensitive token (3.1.1.2, 3.1.1.5).
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not re.fullmatch(TOKEN, parts[0]):
            raise ParseError(f"bad request line {first[:40]!r}")
        msg.method, msg.uri = parts[0], parts[1]
        if not re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", msg.uri):
            # Not a URI at all, e.g. <sip:...> (RFC 4475 3.1.2.7); another scheme is a URI the
            # user agent answers 416 (3.3.2).
            raise ParseError(f"bad Request-URI {msg.uri[:40]!r}")
        if "?" in msg.uri.rpartition("@")[2]:
            raise ParseError("headers in the Request-URI")  # RFC 3261 19.1.5, RFC 4475 3.1.2.11
    for line in lines:
        if not line.strip():
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation
            name, value = msg.headers[-1]
            msg.headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ParseError(f"bad header line {line[:40]!r}")
        msg.headers.append((canonical(name), value.strip()))
    for name in REQUIRED:
        if not msg.get(name):
            raise ParseError(f"no {name} header")
    try:
        number, method = msg.cseq
    except ValueError as exc:
        raise ParseError(f"bad CSeq {msg.get('CSeq')!r}") from exc
    if not method or number < 0 or number >= 2 ** 31:
        raise ParseError(f"bad CSeq {msg.get('CSeq')!r}")  # RFC 3261 8.1.1.5: below 2**31
    if msg.method and method != msg.method:
        raise ParseError(f"CSeq {method} in a {msg.method}")
    for name in SINGLE:
        if sum(1 for key, _ in msg.headers if key == name) > 1:
            raise ParseError(f"more than one {name}")  # RFC 4475 3.3.9 (multi01), 3.3.10
    forwards = msg.get("Max-Forwards")
    if forwards and (not forwards.isdigit() or int(forwards) > 255):
        raise ParseError(f"bad Max-Forwards {forwards[:10]!r}")
    for name in ("From", "To"):
        if _unbalanced(msg.get(name)):
            raise ParseError(f"unterminated quoted string in {name}")
    for name in ADDRESSES:
        for value in msg.all(name):
            fault = _bad_address(value)
            if fault:
                raise ParseError(f"{name}: {fault}")
    for via in msg.all("Via"):
        if not re.match(r"SIP\s*/\s*2\.0\s*/\s*[A-Za-z]+\s+\S", via) or \
                re.search(r";\s*(;|$)", via):
            raise ParseError(f"bad Via {via[:40]!r}")  # RFC 4475 3.1.2.1
    if msg.get("Date") and not msg.get("Date").endswith("GMT"):
        raise ParseError("a Date not in GMT")  # RFC 3261 20.17, RFC 4475 3.1.2.12
    length = msg.get("Content-Length")
    if length:
        if not length.isdigit():
            raise ParseError(f"bad Content-Length {length[:10]!r}")
        if int(length) > len(body):
            # A datagram cut short (RFC 3261 18.3: discarded); a stream never gets here.
            raise ParseError(f"Content-Length {length} but {len(body)} bytes of body")
        body = body[: int(length)]
    msg.body = body
    return msg


def _bad_address(value: str) -> str:
    """What is wrong with one name-addr / addr-spec value (RFC 3261 20.10, 25.1), or ""."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', value)  # quoted display names out of the way
    if bare.strip() == "*":
        return ""
    if "<" in bare:
        display, _, rest = bare.partition("<")
        if not re.fullmatch(rf'\s*(""|({TOKEN}\s*)*)\s*', display):
            return "a display name that is neither tokens nor quoted"  # 3.1.2.15 (baddn)
        if rest[:1].isspace() or re.search(r"\s>", rest):
            return "spaces inside <>"  # RFC 4475 3.1.2.14 (badaspec)
        params = rest.partition(">")[2]
    else:
        if not re.match(r"\s*[A-Za-z][A-Za-z0-9+.\-]*:", bare):
            return "not an address"  # e.g. an unquoted display name with a comma (baddn)
        if "?" in bare.rpartition("@")[2]:
            return "a URI with headers outside <>"  # RFC 4475 3.1.2.13 (regbadct)
        params = bare
    if re.search(r";\s*(;|$)", params):
        return "an empty parameter"  # RFC 4475 3.1.2.1 (badinv01)
    return ""


def _unbalanced(value: str) -> bool:
    """An odd number of unescaped double quotes."""
    quotes, escaped = 0, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quotes += 1
    return quotes % 2 == 1


# --------------------------------------------------------------------------- header values


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and <...>."""
    out, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
    tail = value[start:].strip()
    if tail:
        out.append(tail)
    return out


def params(value: str) -> dict[str, str]:
    """Header parameters after the address: `<sip:a@b>;tag=x;lr` -> {"tag": "x", "lr": ""}."""
    rest = value.rsplit(">", 1)[1] if ">" in value else value
    out = {}
    for part in rest.split(";")[1:]:
        key, _, val = part.partition("=")
        if key.strip():
            out[key.strip().lower()] = val.strip().strip('"')
    return out


@dataclass(frozen=True)
class Address:
    display: str
    uri: str

    @property
    def user(self) -> str:
        return parse_uri(self.uri).user


def address(value: str) -> Address:
    """A name-addr or addr-spec header value -> (display name, URI)."""
    value = value.strip()
    if "<" in value and ">" in value:
        display = value[: value.index("<")].strip().strip('"').strip()
        uri = value[value.index("<") + 1: value.index(">")]
    else:
        display, uri = "", value.split(";", 1)[0].strip()
    return Address(display, uri)


@dataclass(frozen=True)
class Uri:
    scheme: str
    user: str
    host: str
    port: int | None
    params: dict[str, str]

    def hostport(self, default: int = 5060) -> tuple[str, int]:
        return self.host, self.port or default


def parse_uri(uri: str) -> Uri:
    m = re.match(r"^(sips?|tel):(?:([^@;>]*)@)?(\[[^\]]+\]|[^;:>?]+)(?::(\d+))?([^?>]*)", uri)
    if m is None:
        raise ParseError(f"bad URI {uri[:40]!r}")
    user = m.group(2) or ""
    user = user.split(":", 1)[0]  # a password in the user part is never used
    uparams = {}
    for part in (m.group(5) or "").split(";")[1:]:
        key, _, val = part.partition("=")
        uparams[key.lower()] = val
    return Uri(m.group(1), user, m.group(3), int(m.group(4)) if m.group(4) else None, uparams)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(10)


# --------------------------------------------------------------------------- digest auth


def challenge(value: str) -> dict[str, str]:
    """`Digest realm="x", nonce="y", qop="auth"` -> {"scheme": "Digest", "realm": "x", ...}."""
    scheme, _, rest = value.strip().partition(" ")
    out = {"scheme": scheme}
    for key, val in re.findall(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)', rest):
        out[key.lower()] = val.strip('"')
    return out


def authorization(chal: dict[str, str], method: str, uri: str, username: str, password: str,
                  nc: int = 1) -> str:
    """The Authorization / Proxy-Authorization value answering a digest challenge."""
    algorithm = chal.get("algorithm", "MD5")
    hasher = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}.get(algorithm.upper().replace(
        "-SESS", ""), hashlib.md5)

    def h(text: str) -> str:
        return hasher(text.encode()).hexdigest()

    realm, nonce = chal.get("realm", ""), chal.get("nonce", "")
    ha1 = h(f"{username}:{realm}:{password}")
    cnonce = secrets.token_hex(8)
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip() for q in chal.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        ncv = f"{nc:08x}"
        response = h(f"{ha1}:{nonce}:{ncv}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={ncv}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append(f"algorithm={algorithm}")
    if "opaque" in chal:
        parts.append(f'opaque="{chal["opaque"]}"')
    return "Digest " + ", ".join(parts)
