"""An OTLP/HTTP trace receiver that accepts and drops every export: what the tracing variant's
daemon sends its spans to, so the bench measures relationd's cost of tracing (spans, protobuf
encoding, the HTTP export) and not a collector's.

  python -m bench.otlp_sink PORT      answer 200 (an empty ExportTraceServiceResponse) to each POST
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Drop(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def main() -> None:
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Drop).serve_forever()


if __name__ == "__main__":
    main()
