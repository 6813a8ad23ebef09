#!/usr/bin/env python3
"""Stands in for a Slack incoming webhook, and for the orchestrator's
POST /execute until the orchestrator exists: records every message it gets.

  POST /execute              record it (with its Authorization header), answer 202 {"id": N, "state": "queued"}
  POST <any other path>      record the JSON body, answer 200 "ok" (or fail, see below)
  GET  /_messages            every recorded message, oldest first, as a JSON array
  POST /_control/fail        {"status": 500, "count": N}: answer the next N posts (-1: all) with that status
                             (on /execute, 200 is the orchestrator's "nothing to do")
  POST /_control/reset       forget messages and failures
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler

from serving import serve

LOCK = threading.Lock()
STATE = {"messages": [], "fail_status": 0, "fail_count": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_messages":
            with LOCK:
                self.reply(200, json.dumps(STATE["messages"]), "application/json")
        else:
            self.reply(404, "no_service")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/_control/fail":
            options = json.loads(raw or b"{}")
            with LOCK:
                STATE["fail_status"] = int(options.get("status", 500))
                STATE["fail_count"] = int(options.get("count", -1))
            self.reply(200, "ok")
            return
        if self.path == "/_control/reset":
            with LOCK:
                STATE.update(messages=[], fail_status=0, fail_count=0)
            self.reply(200, "ok")
            return
        with LOCK:
            if STATE["fail_count"] != 0:
                if STATE["fail_count"] > 0:
                    STATE["fail_count"] -= 1
                if self.path == "/execute" and STATE["fail_status"] == 200:
                    self.reply(200, json.dumps({"outcome": "nothing_to_do", "reason": "every API server and kubelet "
                                                "already runs 1.34.5; nothing to do"}), "application/json")
                elif self.path == "/execute":
                    error = "a job is already active: 7" if STATE["fail_status"] == 409 else "refused by the test bed"
                    self.reply(STATE["fail_status"], json.dumps({"error": error, "detail": {"active_job": 7}}),
                               "application/json")
                else:
                    self.reply(STATE["fail_status"],
                               "invalid_payload" if STATE["fail_status"] == 400 else "service_unavailable")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self.reply(400, "invalid_payload")
                return
            STATE["messages"].append({"path": self.path, "body": body,
                                      "authorization": self.headers.get("Authorization", "")})
            count = len([m for m in STATE["messages"] if m["path"] == "/execute"])
        if self.path == "/execute":
            self.reply(202, json.dumps({"id": count, "state": "queued"}), "application/json")
        else:
            self.reply(200, "ok")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    serve(Handler, args.port_file)

if __name__ == "__main__":
    main()
