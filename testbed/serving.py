"""Shared by the test bed's small servers: listen on a free loopback port,
announce it in a file (written whole, then renamed), serve forever; and the
byte pipe of its TCP proxies."""
import os
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
    """Copies bytes from one socket to the other until either side ends, then shuts both."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for sock in (source, sink):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
