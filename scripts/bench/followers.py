#!/usr/bin/env python3
"""Follows one job with N clients of GET /jobs/{id}/events?follow=true and
samples the service meanwhile (used by scripts/bench/followers.sh).

  followers.py URL TOKEN JOB N PID

Each follower reads its stream to the `end` message and checks that it got
every event once, in order (ids 1, 2, …). Prints one line:
  RESULT seconds cpu_seconds peak_rss_kb events complete_followers
"""
import http.client
import os
import sys
import threading
import time
import urllib.parse

url, token, job, count, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
parts = urllib.parse.urlsplit(url)
ticks = os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


results = [None] * count


def follow(index):
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    connection.request("GET", f"/jobs/{job}/events?follow=true", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    if response.status != 200:
        results[index] = ("status", response.status)
        return
    ids, ended, buffer = [], False, b""
    while not ended:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            message, buffer = buffer.split(b"\n\n", 1)
            lines = message.decode().split("\n")
            if "event: end" in lines:
                ended = True
            for line in lines:
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
    connection.close()
    results[index] = ("ok", ended, ids)


peak = rss_kb()
stop = threading.Event()


def sample():
    global peak
    while not stop.is_set():
        peak = max(peak, rss_kb())
        time.sleep(0.05)


sampler = threading.Thread(target=sample)
sampler.start()
cpu_before, started = cpu_seconds(), time.monotonic()
threads = [threading.Thread(target=follow, args=(i,)) for i in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
stop.set()
sampler.join()
events = max((len(r[2]) for r in results if r and r[0] == "ok"), default=0)
complete = sum(1 for r in results if r and r[0] == "ok" and r[1] and r[2] == list(range(1, events + 1)))
print(f"RESULT {elapsed:.2f} {cpu:.3f} {peak} {events} {complete}")
