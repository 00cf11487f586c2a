"""A small HTTPS file server for the provisioning tests: serves one directory with the given
certificate, run as its own process (started and stopped by PID).

    python tests/lab/https_files.py ROOT CERT KEY PORT [--trickle SECONDS]

`--trickle` sends each file one byte per SECONDS: a slow server. Every request is appended to
ROOT/../requests.log as "GET /path status", for the tests to read.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("port", type=int)
    parser.add_argument("--trickle", type=float, default=0.0)
    args = parser.parse_args()
    journal = args.root.parent / "requests.log"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            path = args.root / name
            if ".." in name or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                status = 404
            else:
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if args.trickle:
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(args.trickle)
                else:
                    self.wfile.write(data)
                status = 200
            with journal.open("a") as f:
                f.write(f"GET {self.path} {status}\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
