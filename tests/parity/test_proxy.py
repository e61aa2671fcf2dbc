"""On the local stack: proxy.host / proxy.port carry every call to Kusto and Azure Storage,
the query (engine) client's included, which the reference leaves out."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from parity_helpers import drain, note_table, notes, rows

pytestmark = pytest.mark.stack


class _ForwardingProxy(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: absolute-URI requests are sent on, and noted."""

    seen: list[tuple[str, int, str]] = []  # (host, port, path)

    def _forward(self) -> None:
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("proxy-connection", "transfer-encoding", "connection")
        }
        if body is not None:
            headers["Content-Length"] = str(len(body))
        self.seen.append((target.hostname or "", target.port or 80, target.path))
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        query = f"?{target.query}" if target.query else ""
        upstream.request(self.command, target.path + query, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def _read_chunked(self) -> bytes:
        chunks = []
        while size := int(self.rfile.readline().strip().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[int, list[tuple[str, int, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    _ForwardingProxy.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _ForwardingProxy.seen
    server.shutdown()
    server.server_close()


def test_every_kusto_and_storage_call_goes_through_the_proxy(
    stack, kusto, kusto_db, make_topic, produce, settings_file, proxy
) -> None:
    port, seen = proxy
    topic = make_topic(partitions=1)
    note_table(kusto, kusto_db, "Notes")
    produce(topic, notes(0, 10))
    path = settings_file(
        topic,
        [{"topic": topic, "db": kusto_db, "table": "Notes", "format": "json", "mapping": "notes"}],
        kusto={
            "ingestion_url": stack.kusto_url,
            # the same emulator under another name, to tell the engine client's calls apart
            "query_url": stack.kusto_url.replace("127.0.0.1", "localhost"),
            "proxy": {"host": "127.0.0.1", "port": port},
        },
    )
    drain(path)
    assert rows(kusto, kusto_db, "Notes | count")[0]["Count"] == 10
    kusto_port = urlsplit(stack.kusto_url).port
    kusto_calls = {(host, path) for host, p, path in seen if p == kusto_port}
    assert ("127.0.0.1", "/v1/rest/mgmt") in kusto_calls  # the ingest client's resources
    assert ("localhost", "/v1/rest/mgmt") in kusto_calls  # the engine client: extents
    ports = {p for _, p, _ in seen}
    blob, queue = (urlsplit(u).port for u in _storage_urls(stack.storage_connection_string))
    assert blob in ports and queue in ports  # the batch upload and the ingestion message


def _storage_urls(connection_string: str) -> tuple[str, str]:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return parts["BlobEndpoint"], parts["QueueEndpoint"]
