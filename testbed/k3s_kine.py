#!/usr/bin/env python3
"""A K3s server's SQLite datastore as k3s keeps it: open in WAL mode while
k3s runs (so state.db-wal and state.db-shm exist, as on a running
server) and written to every half second, as kine writes the API's
objects. A backup must be consistent while this runs.

k3s runs while RUNNING exists (the bed's systemctl removes it on `stop
k3s` and writes it on `start`/`restart`): without it the database is
closed and CLOSED written, which `systemctl stop` waits for, as systemd
waits for k3s to exit; once RUNNING is back, state.db is opened again
(a restore may have put another file there).

  k3s_kine.py --db DIR/state.db --running FILE --closed FILE
"""
import argparse
import os
import pathlib
import sqlite3
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--running", required=True)
    parser.add_argument("--closed", required=True)
    args = parser.parse_args()
    running, closed = pathlib.Path(args.running), pathlib.Path(args.closed)
    connection = None
    revision = 0
    next_write = 0.0
    while True:
        if not running.exists():
            if connection is not None:
                connection.close()
                connection = None
            closed.touch()
            time.sleep(0.05)
            continue
        if connection is None:
            closed.unlink(missing_ok=True)
            connection = sqlite3.connect(args.db, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
        if time.monotonic() >= next_write:
            revision += 1
            connection.execute("INSERT INTO kine (name, value) VALUES (?, ?)",
                               (f"/registry/leases/kube-system/lease-{revision}", os.urandom(64)))
            next_write = time.monotonic() + 0.5
        time.sleep(0.05)


if __name__ == "__main__":
    main()
