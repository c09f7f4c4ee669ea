"""A plain standard-library SSE server with scripted misbehaviour, for the
client tests. Runs on 127.0.0.1, a free port, in a thread of its own.

Paths (each connection reads `Last-Event-ID` and the query):
- /counter?total=N     events after Last-Event-ID up to N, `retry: 20`, then
                        close; once N was sent, 204 (stop)
- /drop?total=N        like /counter but one event per connection, followed
                        by half an event, then the connection drops
- /crlf                 CRLF line ends split across writes, then 204 next time
- /status/CODE          that status with a short body
- /wrongtype            200 text/html
- /stall                one event, then silence (until the client gives up),
                        then on reconnect one more event and 204 after
- /garbage              random bytes and close, then 204
- /longline             10 MB without a line end
- /echo                 one event whose data is the request (method, body,
                        cookie), then 204 next time
- /id/NAME              one event whose id is ODD_IDS[NAME] (sent raw as
                        UTF-8), then 204 next time
- /retry?value=V        `retry: V` (or `retry:` of `digits` nines) with one
                        event, then close; 204 next time
- /moved/CODE?to=URL    a redirect with that status to URL
- /page?src=URL         an HTML page whose `EventSource(URL)` keeps what it
                        gets in `window.seen` (for Chromium)

`seen` records each request: path, method, the `Last-Event-ID` value (the
bytes after the colon, without surrounding whitespace, as HTTP defines a
field value), the exact bytes of that header line after the colon, and the
headers.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

# ids a server may legally send, by name (the parser keeps them as they are)
ODD_IDS = {
    "unicode": "é\u2013✓ 東京",
    "spaces": "  padded id  ",
    "tabs": "\tx y\t",
    "blank": "   ",
    "formfeed": "a\x0cb",
}


class Seen(NamedTuple):
    path: str
    method: str
    last_event_id: bytes | None  # the field value (RFC 9110: no OWS around it)
    raw_last_event_id: bytes | None  # every byte after the colon, CRLF aside
    headers: dict[str, str]


class _RecordingReader:
    """The request's input, keeping the lines read (the request line and
    the header lines), so a test sees the bytes exactly as they came."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.lines: list[bytes] = []

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.raw.readline(size)
        self.lines.append(line)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


_PAGE = """<!doctype html>
<script>
  window.seen = [];
  window.source = new EventSource({src});
  window.source.onmessage = (e) => window.seen.push([e.data, e.lastEventId]);
</script>
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SSETestServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.rfile = self._recorder = _RecordingReader(self.rfile)  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        self._recorder.lines.clear()
        super().handle_one_request()

    def _raw_last_event_id(self) -> bytes | None:
        for line in self._recorder.lines[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.lower() == b"last-event-id":
                return value.removesuffix(b"\n").removesuffix(b"\r")
        return None

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        last = self.headers.get("Last-Event-ID")
        raw = self._raw_last_event_id()
        value = None if raw is None else raw.strip(b" \t")
        with self.server.lock:
            self.server.requests.append((url.path, last, dict(self.headers)))
            self.server.seen.append(Seen(url.path, self.command, value, raw, dict(self.headers)))
            visit = self.server.visits[url.path] = self.server.visits.get(url.path, 0) + 1
        name = url.path.strip("/").split("/")[0]
        handler = getattr(self, f"_{name}", None) if name.isidentifier() else None
        if handler is None:  # /favicon.ico, say
            self._plain(404)
            return
        handler(query, last, visit, url.path)

    # -- helpers --------------------------------------------------------------

    def _stream_head(self, content_type: str = "text/event-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _plain(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if body:
            self.wfile.write(body)

    # -- scripted paths -----------------------------------------------------------

    def _counter(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        total = int(query.get("total", "5"))
        start = int(last) if last else 0
        if start >= total:
            self._plain(204)
            return
        self._stream_head()
        self._write(b"retry: 20\n\n")
        for i in range(start + 1, total + 1):
            self._write(f"id: {i}\ndata: event {i}\n\n".encode())

    def _drop(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        total = int(query.get("total", "3"))
        start = int(last) if last else 0
        if start >= total:
            self._plain(204)
            return
        self._stream_head()
        n = start + 1
        self._write(f"retry: 20\nid: {n}\ndata: event {n}\n\nid: {n + 1}\ndata: half".encode())
        # and the connection drops mid-event

    def _crlf(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        if visit > 1:
            self._plain(204)
            return
        self._stream_head()
        for piece in (b"retry: 20\r\nid: a\r\ndata: one\r", b"\ndata: two\r", b"\n\r", b"\n"):
            self._write(piece)
            time.sleep(0.02)

    def _live(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        """A replay, the hub's live marker, a live event; then a connection
        with no marker (and a look-alike that is not one); then 204."""
        if visit > 2:
            self._plain(204)
            return
        self._stream_head()
        if visit == 1:
            self._write(b"retry: 20\nid: 1\ndata: old\n\n")
            self._write(b'event: ssehub-live\ndata: {"replayed": 1}\n\n')
            self._write(b"id: 2\ndata: new\n\n")
        else:
            self._write(b"event: ssehub-live\ndata: not the marker\n\nid: 3\ndata: again\n\n")

    def _status(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        self._plain(int(path.rsplit("/", 1)[1]), b"something went wrong here\n")

    def _wrongtype(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        body = b"<html>not a stream</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stall(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        if visit > 2:
            self._plain(204)
            return
        self._stream_head()
        self._write(f"retry: 20\nid: s{visit}\ndata: before silence {visit}\n\n".encode())
        if visit == 1:
            self.server.stop.wait(10)  # silent, but open

    def _garbage(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        if visit > 1:
            self._plain(204)
            return
        self._stream_head()
        self._write(b"retry: 20\n" + os.urandom(64 * 1024) + b"\n\ndata: after garbage\n\n")

    def _longline(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        self._stream_head()
        chunk = b"x" * 65536
        try:
            self._write(b"data: ")
            for _ in range(160):  # 10 MB
                self._write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _echo(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        if visit > 1:
            self._plain(204)
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        self._stream_head()
        data = {
            "method": self.command,
            "body": body,
            "cookie": self.headers.get("Cookie"),
            "x-test": self.headers.get("X-Test"),
            "accept": self.headers.get("Accept"),
        }
        self._write(f"retry: 20\ndata: {json.dumps(data)}\n\n".encode())

    def _id(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        if visit > 1:
            self._plain(204)
            return
        self._stream_head()
        odd = ODD_IDS[path.rsplit("/", 1)[1]]
        self._write(b"retry: 20\nid: " + odd.encode() + b"\ndata: one\n\n")

    def _retry(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        if visit > 1:
            self._plain(204)
            return
        value = query.get("value") or "9" * int(query["digits"])
        self._stream_head()
        self._write(f"retry: {value}\nid: r\ndata: x\n\n".encode())

    def _page(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        body = _PAGE.format(src=json.dumps(query["src"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _moved(self, query: dict[str, str], last: str | None, visit: int, path: str) -> None:
        self.send_response(int(path.rsplit("/", 1)[1]))
        self.send_header("Location", query["to"])
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)


class SSETestServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.requests: list[tuple[str, str | None, dict[str, str]]] = []
        self.seen: list[Seen] = []
        self.visits: dict[str, int] = {}
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def last_event_ids(self, path: str) -> list[str | None]:
        with self.lock:
            return [last for p, last, _ in self.requests if p == path]

    def seen_at(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def __enter__(self) -> SSETestServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
        self._thread.join(10)
