#!/usr/bin/env python3
"""tls_origin: a loopback stand-in for heraldd's ports over TLS, for the
herald CLI's TLS tests (heraldd itself does not serve TLS yet).

It answers what the CLI asks of heraldd, on one port:

  GET /v1/info   a minimal info document (client_port = this port); needs
                 "Authorization: Bearer ..." like heraldd, else 401
  GET /readyz    200 "ready"
  GET /v1/sse    one Server-Sent Event, then the stream ends
  GET /v1/ws     a WebSocket handshake, one text frame, a close frame
  else           404

With --plain it serves the same without TLS. Every request that got as far
as its request line is appended to --record FILE as "METHOD PATH" (the
query and headers are left out: they may carry a credential), so a test can
prove that a refused client sent nothing. On start it prints
"tls-origin listening on 127.0.0.1:PORT". Python 3 standard library only.
"""
import argparse
import base64
import hashlib
import json
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that refuses our certificate aborts the handshake: that
        # is what the tests provoke, not an error worth a traceback.
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        with self.server.record_lock:
            if self.server.record_path:
                with open(self.server.record_path, "a") as f:
                    f.write("%s %s\n" % (self.command, urlsplit(self.path).path))

    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        self.record()
        path = urlsplit(self.path).path
        if path == "/v1/info":
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self.reply(401, '{"error":"no API key"}')
                return
            port = self.server.server_address[1]
            self.reply(200, json.dumps({
                "version": "tls-origin",
                "instance_id": "tls-origin-1",
                "shards": 1,
                "client_port": port,
                "ops_port": port,
                "ready": True,
                "kafka": {"bootstrap_servers": "127.0.0.1:9", "embedded": False},
                "topics": {"announcements": "herald.announcements", "dlq": "herald.dlq"},
            }))
        elif path == "/readyz":
            self.reply(200, "ready", "text/plain")
        elif path == "/v1/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b'id: 1\ndata: {"via":"sse","text":"over TLS"}\n\n')
            self.wfile.flush()
            self.close_connection = True
        elif path == "/v1/ws":
            self.websocket()
        else:
            self.reply(404, '{"error":"not found"}')

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        payload = b'{"via":"ws","text":"over TLS"}'
        # One unmasked text frame (server to client), then close 1000.
        self.wfile.write(bytes([0x81, len(payload)]) + payload)
        self.wfile.write(bytes([0x88, 2, 0x03, 0xE8]))
        self.wfile.flush()
        # Let the client's close frame arrive before the connection goes.
        self.connection.settimeout(5)
        try:
            self.rfile.read(2)
        except (OSError, ValueError):
            pass
        self.close_connection = True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", default="", help="PEM certificate (chain) to serve")
    p.add_argument("--key", default="", help="PEM private key of --cert")
    p.add_argument("--plain", action="store_true", help="serve without TLS")
    p.add_argument("--record", default="", help="append METHOD PATH per request to FILE")
    args = p.parse_args()
    if not args.plain and not args.cert:
        p.error("--cert is needed unless --plain")

    server = Server(("127.0.0.1", args.port), Handler)
    server.record_path = args.record
    server.record_lock = threading.Lock()
    if not args.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key or None)
        # Handshake in the connection's thread, not in the accept loop.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("tls-origin listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
