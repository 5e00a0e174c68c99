"""Alertmanager webhook receiver for the monitoring scenario.

Appends each notification body to /var/lib/webhook-sink/<path>.jsonl, one JSON document
per line, so the tests can see which receiver got which alert.
"""

import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SINK = Path("/var/lib/webhook-sink")


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's handler name
        name = self.path.strip("/")
        if not re.fullmatch(r"[a-z]+", name):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with (SINK / f"{name}.jsonl").open("ab") as log:
            log.write(body.replace(b"\n", b"") + b"\n")
        self.send_response(200)
        self.end_headers()


if __name__ == "__main__":
    SINK.mkdir(parents=True, exist_ok=True)
    ThreadingHTTPServer(("0.0.0.0", 9099), Sink).serve_forever()
