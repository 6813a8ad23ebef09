#!/usr/bin/env python3
"""A K3s server's SQLite datastore as k3s keeps it: open in WAL mode the
whole time (so state.db-wal and state.db-shm exist, as on a running
server) and written to every half second, as kine writes the API's
objects. A backup must be consistent while this runs.

  k3s_kine.py --db DIR/state.db
"""
import argparse
import os
import sqlite3
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    connection = sqlite3.connect(args.db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    revision = 0
    while True:
        revision += 1
        connection.execute("INSERT INTO kine (name, value) VALUES (?, ?)",
                           (f"/registry/leases/kube-system/lease-{revision}", os.urandom(64)))
        time.sleep(0.5)


if __name__ == "__main__":
    main()
