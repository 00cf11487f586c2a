"""What crosses the loopback interface, as a capture would show it: UDP datagrams read with an
AF_PACKET socket (root, as the lab runs), for tests that must see the wire itself (is the audio
in clear?). Started and stopped by the test; nothing is written to disk."""

from __future__ import annotations

import os
import socket
import struct
import threading

ETH_P_ALL = 0x0003


class Sniffer:
    """UDP payloads on `lo` (IPv4), with their ports, while running."""

    def __init__(self, interface: str = "lo") -> None:
        self.interface = interface
        self.datagrams: list[tuple[int, int, bytes]] = []  # (source port, dest port, payload)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> Sniffer:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((self.interface, 0))
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                frame, meta = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if meta[2] == socket.PACKET_OUTGOING:
                continue  # each datagram on lo shows twice: keep the copy received
            if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != 17:
                continue
            src, dst, length = struct.unpack("!HHH", ip[ihl:ihl + 6])
            self.datagrams.append((src, dst, ip[ihl + 8: ihl + length]))

    def rtp(self, pt: int = 0) -> list[bytes]:
        """Datagrams that look like RTP of payload type `pt` (version 2, no CSRC)."""
        return [d for _, _, d in self.datagrams
                if len(d) > 12 and d[0] == 0x80 and d[1] & 0x7F == pt]


class Wire:
    """The RTP on the loopback interface when the test may read it (root), else nothing."""

    def __init__(self) -> None:
        self.sniffer = Sniffer() if os.geteuid() == 0 else None

    def __enter__(self) -> Wire:
        if self.sniffer is not None:
            self.sniffer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sniffer is not None:
            self.sniffer.__exit__(*exc)

    def payload_types(self) -> set[int]:
        """The RTP payload types seen (RTCP's 200-204 fall outside 0-71)."""
        if self.sniffer is None:
            return set()
        return {d[1] & 0x7F for _, _, d in self.sniffer.datagrams
                if len(d) > 12 and d[0] >> 6 == 2 and d[1] & 0x7F < 72}
