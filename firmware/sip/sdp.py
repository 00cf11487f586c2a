"""SDP (RFC 4566 / 3264) as far as a desk phone needs it.

Owns: our offer and answer (G722, PCMU, PCMA in the order of `[sip] codecs`, telephone-event,
ptime, direction for hold, the RTP/AVP or RTP/SAVP profile and `a=crypto` lines), and reading
the far end's: its RTP address and port, the codec to use, the DTMF payload type, its
direction, its profile and crypto lines.
Never touches: sockets or call state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from firmware.sip import codecs as codec_table
from firmware.sip import srtp

log = logging.getLogger("sip")

CODECS = {c.pt: c.name for c in codec_table.BY_NAME.values()}
DTMF_PT = 101


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class Media:
    address: str
    port: int
    codec: int  # payload type: 9 G722, 0 PCMU, 8 PCMA
    dtmf: int | None  # telephone-event payload type, if offered
    direction: str  # sendrecv | sendonly | recvonly | inactive
    profile: str = "RTP/AVP"  # RTP/SAVP: the far end sends and expects SRTP only
    cryptos: tuple[srtp.Crypto, ...] = ()  # its usable a=crypto lines (RFC 4568), in order
    crypto_problems: tuple[str, ...] = ()  # why any other a=crypto line was not usable
    rtcp_port: int | None = None  # its a=rtcp (RFC 3605); absent: port + 1


def sdp_part(content_type: str, body: bytes) -> bytes | None:
    """The SDP inside a multipart body (RFC 5621: PBXes send SDP beside ISUP, or a
    Resource-List, in `multipart/mixed`), or None when there is none or it is malformed."""
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        return None
    boundary = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return None
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.lstrip(b"\n").partition(b"\n\n")
        headers = head.decode("latin-1").lower().replace(" ", "")
        if "content-type:application/sdp" in headers:  # untyped parts are text (RFC 2046)
            return content.rstrip(b"\r\n") + b"\r\n"
    return None


def build(address: str, port: int, session: int, version: int, *, codecs: tuple[int, ...] =
          (0, 8), dtmf: int | None = DTMF_PT, direction: str = "sendrecv", ptime: int = 20,
          profile: str = "RTP/AVP", cryptos: tuple[srtp.Crypto, ...] = ()) -> bytes:
    pts = [str(c) for c in codecs] + ([str(dtmf)] if dtmf is not None else [])
    kind = "IP6" if ":" in address else "IP4"
    lines = [
        "v=0",
        f"o=deskphone {session} {version} IN {kind} {address}",
        "s=deskphone",
        f"c=IN {kind} {address}",
        "t=0 0",
        f"m=audio {port} {profile} {' '.join(pts)}",
    ]
    # G.722's clock in SDP is 8000 like the others' (RFC 3551 4.5.2), though it samples 16 kHz.
    lines += [f"a=rtpmap:{c} {CODECS[c]}/{codec_table.RTP_CLOCK}" for c in codecs]
    if dtmf is not None:
        lines += [f"a=rtpmap:{dtmf} telephone-event/8000", f"a=fmtp:{dtmf} 0-16"]
    lines += [f"a=crypto:{c.line()}" for c in cryptos]
    lines += [f"a=ptime:{ptime}", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse(body: bytes, prefer: tuple[int, ...] = (0, 8), offer: bool = False) -> Media:
    """The far end's audio stream; SdpError when there is none we can play.

    `prefer`: the payload types we can use, best first. In an offer (`offer=True`) our order
    decides which one we answer with; in an answer the far end has chosen: its first one we
    can use."""
    try:
        text = body.decode("utf-8", "replace")
    except Exception as exc:  # pragma: no cover - decode with replace cannot fail
        raise SdpError(str(exc)) from exc
    session_addr = ""
    media_addr = ""
    port = -1
    pts: list[int] = []
    rtpmap: dict[int, str] = {}
    direction = "sendrecv"
    in_audio = False
    profile = "RTP/AVP"
    cryptos: list[srtp.Crypto] = []
    problems: list[str] = []
    rtcp_port: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            fields = value.split()
            in_audio = bool(fields) and fields[0] == "audio" and port < 0
            if in_audio and len(fields) >= 4 and fields[1].isdigit():
                port = int(fields[1])
                profile = fields[2]
                pts = [int(p) for p in fields[3:] if p.isdigit()]
        elif kind == "c":
            addr = value.split()[-1].split("/")[0] if value.split() else ""
            if in_audio:
                media_addr = addr
            elif port < 0:
                session_addr = addr
        elif kind == "a" and (in_audio or port < 0):
            if value.startswith("rtpmap:"):
                pt, _, codec = value[7:].partition(" ")
                if pt.isdigit():
                    rtpmap[int(pt)] = codec.lower()
            elif value.startswith("rtcp:") and in_audio and value[5:].split()[0:1] and \
                    value[5:].split()[0].isdigit() and 0 < int(value[5:].split()[0]) < 65536:
                rtcp_port = int(value[5:].split()[0])
            elif value in ("sendrecv", "sendonly", "recvonly", "inactive"):
                direction = value
            elif value.startswith("crypto:") and in_audio:
                try:
                    cryptos.append(srtp.parse_crypto(value[7:]))
                except srtp.SrtpError as exc:
                    problems.append(str(exc))
    if port < 0:
        raise SdpError("no audio stream")
    address = media_addr or session_addr
    if not address:
        raise SdpError("no connection address")
    if address in ("0.0.0.0", "::"):
        direction = "inactive" if direction == "sendrecv" else direction  # RFC 2543 hold
    usable = []
    refused: list[str] = []
    for candidate in pts:
        mapped = rtpmap.get(candidate)
        fmt, _, clock = (mapped or "").partition("/")
        if candidate in CODECS and mapped is not None and \
                (fmt != CODECS[candidate].lower() or clock.split("/")[0] != "8000"):
            # A static payload type mapped to another format or clock: most often G722/16000,
            # which RFC 3551 4.5.2 rules out (its RTP clock is 8000). Its timestamps would run
            # at the wrong speed: not that payload type, the next one.
            log.warning("SDP maps payload type %d to %r, not %s/8000 (RFC 3551): not used",
                        candidate, mapped, CODECS[candidate])
            refused.append(f"{candidate} as {mapped!r}")
            continue
        usable.append(candidate)
    order = [c for c in prefer if c in usable] if offer else \
        [c for c in usable if c in prefer]
    chosen = order[0] if order else None
    if chosen is None:
        wrong = f" ({', '.join(refused)}: RFC 3551 says 8000)" if refused else ""
        raise SdpError(f"no common codec in {pts}{wrong}")
    # RFC 4733 events run at the audio codec's clock (8000 for G.711): linphone offers
    # telephone-event at 48000, 16000 and 8000 on three payload types; only the 8000 one is ours.
    dtmf = next((pt for pt in pts if rtpmap.get(pt, "") == "telephone-event/8000"), None)
    # a=ptime is the far end's preference (RFC 4566), not read: every device here works in
    # 20 ms frames, which every G.711 and G.722 endpoint accepts, so we send 20 ms whatever it
    # asked for.
    return Media(address, port, chosen, dtmf, direction, profile, tuple(cryptos),
                 tuple(problems), rtcp_port)


def answer_direction(offered: str) -> str:
    """RFC 3264 section 6.1: what we answer to the far end's direction."""
    return {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}.get(
        offered, "sendrecv")


def session_id() -> int:
    return int(time.time())
