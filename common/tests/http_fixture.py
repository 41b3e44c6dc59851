"""A real HTTP server on 127.0.0.1 for download tests: Range requests, and cut-off answers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional


@dataclass
class Served:
    data: bytes
    honour_range: bool = True
    cut_after: Optional[int] = None  # close the connection after this many body bytes, once


@dataclass
class FileServer:
    files: Dict[str, Served] = field(default_factory=dict)
    range_headers: List[Optional[str]] = field(default_factory=list)
    url: str = ""

    def serve(self, path: str, data: bytes, **options) -> str:
        self.files[path] = Served(data, **options)
        return self.url + path


def start(server_state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            served = server_state.files.get(self.path)
            header = self.headers.get("Range")
            server_state.range_headers.append(header)
            if served is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if header and served.honour_range:
                start = int(header.split("=")[1].split("-")[0])
                if start >= len(served.data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(served.data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(served.data) - 1}/{len(served.data)}"
                )
            else:
                self.send_response(200)
            body = served.data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if served.cut_after is not None:
                cut, served.cut_after = served.cut_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd
