"""Shared by the test bed's small servers: listen on a free loopback port,
announce it in a file (written whole, then renamed), serve forever; and the
byte pipe of its TCP proxies."""
import os
import random
import socket
from http.server import ThreadingHTTPServer


def serve(handler, port_file):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


def pipe(source, sink):
    """Copies bytes from one socket to the other until either side ends, then shuts both.
    Each piece goes on at once (TCP_NODELAY): with Nagle's algorithm a
    response's second segment waited for the client's delayed ACK, 40 ms on
    every request through the bed's proxies."""
    try:
        sink.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for sock in (source, sink):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


HANDED_OUT = set()


def free_port():
    """A free loopback port below the kernel's ephemeral range (32768 and up):
    a port the kernel hands out (bind to 0) can be taken by an outgoing
    connection before its server binds it, which made beds fail with
    "address already in use" under load. Never the same port twice."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        HANDED_OUT.add(port)
        return port
    raise SystemExit("no free loopback port between 20000 and 32000")
