#!/usr/bin/env python3
"""HTTP/HTTPS server for the HTTP client's tests.

Answers every method. Paths:
  /status/N          responds with status N
  /redirect          302 to /echo
  /slow?ms=N         waits N ms, then echoes
  /bytes/N           N bytes of 'x'
  anything else      echoes the request as JSON: method, path, headers,
                     body (base64) and the client certificate's subject
Writes its port to --port-file once it listens.
"""
import argparse
import base64
import json
import os
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlparse(self.path)
        if url.path.startswith("/status/"):
            self.send(int(url.path.split("/")[2]), b'{"status":"as asked"}')
            return
        if url.path == "/redirect":
            self.send(302, b"", extra=[("Location", "/echo?redirected=1")])
            return
        if url.path.startswith("/bytes/"):
            self.send(200, b"x" * int(url.path.split("/")[2]), "application/octet-stream")
            return
        if url.path == "/slow":
            time.sleep(int(parse_qs(url.query).get("ms", ["1000"])[0]) / 1000)
        subject = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                subject = dict(x[0] for x in cert["subject"]).get("commonName")
        echo = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": base64.b64encode(body).decode(),
            "client_subject": subject,
        }
        self.send(200, json.dumps(echo).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


class TLSServer(ThreadingHTTPServer):
    """Does the TLS handshake in the request's thread. After a failed
    handshake it sends FIN and drains instead of closing at once: closing a
    socket with unread data sends a TCP reset, which can destroy the TLS
    alert before the client reads it."""

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):
        tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            tls.settimeout(10)
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            try:
                tls.shutdown(socket.SHUT_WR)
                while tls.recv(65536):
                    pass
            except (ssl.SSLError, OSError):
                pass
            tls.close()
            return
        self.RequestHandlerClass(tls, client_address, self)
        try:
            tls.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        tls.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    args = parser.parse_args()
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        server = TLSServer(("127.0.0.1", 0), Handler, context)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
