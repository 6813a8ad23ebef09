#!/usr/bin/env python3
"""A TCP proxy that goes silent: it forwards each connection to --target-port
both ways, and --freeze-after seconds after the connection opened it stops
reading from either side while keeping both sockets open. The client's
kernel still gets its bytes acknowledged (the proxy's socket takes them), so
only an answer that never comes shows the connection is gone: what a NAT or
firewall that forgot a connection, or a host that vanished, looks like from
the client. Writes its port to --port-file once it listens."""
import argparse
import os
import socket
import threading
import time


def forward(source, sink, until):
    source.settimeout(0.1)
    while time.monotonic() < until:
        try:
            data = source.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if not data:
            return
        sink.sendall(data)
    # Frozen: hold both sockets open and never read again.
    while True:
        time.sleep(3600)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--freeze-after", type=float, required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0))
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", args.target_port))
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        until = time.monotonic() + args.freeze_after
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=forward, args=(a, b, until), daemon=True).start()


if __name__ == "__main__":
    main()
