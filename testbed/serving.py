"""Shared by the test bed's small HTTP servers: listen on a free loopback
port, announce it in a file (written whole, then renamed), serve forever."""
import os
from http.server import ThreadingHTTPServer


def serve(handler, port_file):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()
