#!/usr/bin/env python3
"""The API server's address as clients see it: a TCP proxy in front of the
API simulator that goes away while the control plane restarts.

When kubeadm restarts the kube-apiserver static pod (`upgrade apply`, or
`upgrade node` on a control plane), a real cluster refuses connections for
tens of seconds and resets the ones it had. The bed's fake kubeadm writes
the end of such an outage (epoch seconds) to the outage file; until then
this proxy closes its listening socket (new connections are refused) and
resets every open connection. TLS passes through untouched, so clients
verify the simulator's certificate as before.

    api_proxy.py --target 127.0.0.1:PORT --port-file FILE --outage-file FILE
"""
import argparse
import os
import pathlib
import select
import socket
import struct
import sys
import threading
import time

from serving import pipe


def log(message):
    print(f"{time.strftime('%H:%M:%S')} api-proxy: {message}", file=sys.stderr, flush=True)


class Proxy:
    def __init__(self, target, outage_file):
        self.target = target
        self.outage_file = outage_file
        self.lock = threading.Lock()
        self.connections = set()
        self.port = 0
        self.listener = None

    def listen(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.listener = listener

    def outage_end(self):
        try:
            return float(self.outage_file.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0.0

    def reset_all(self):
        with self.lock:
            connections, self.connections = self.connections, set()
        for sock in connections:
            try:
                # Linger 0: close sends a RST, as a process that died does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass
        return len(connections)

    def serve(self, client):
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError as error:
            log(f"simulator unreachable: {error}")
            client.close()
            return
        with self.lock:
            self.connections.update((client, upstream))
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    def run(self):
        while True:
            end = self.outage_end()
            if end > time.time():
                self.listener.close()
                self.listener = None
                log(f"outage: connections refused for {end - time.time():.1f} s, {self.reset_all()} reset")
                while (end := self.outage_end()) > time.time():
                    time.sleep(min(0.05, max(0.0, end - time.time())))
                self.listen()
                log("outage over: accepting connections")
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if ready:
                client, _ = self.listener.accept()
                self.serve(client)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="HOST:PORT of the API simulator")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--outage-file", required=True)
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    proxy = Proxy((host, int(port)), pathlib.Path(args.outage_file))
    proxy.listen()
    temporary = pathlib.Path(args.port_file + ".tmp")
    temporary.write_text(f"{proxy.port}\n")
    os.replace(temporary, args.port_file)
    proxy.run()


if __name__ == "__main__":
    main()
