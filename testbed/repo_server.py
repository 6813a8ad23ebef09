#!/usr/bin/env python3
"""A package repository in the pkgs.k8s.io shape, served from a folder.

Files under ROOT are served as they are (GET and HEAD). Anything missing,
including a minor that is not published yet and directory listings, answers
403 Forbidden, as the real repository's storage does.
"""
import argparse
import os
from http.server import SimpleHTTPRequestHandler
from serving import serve
from urllib.parse import unquote, urlparse


def make_handler(root):
    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def translate_path(self, path):
            relative = unquote(urlparse(path).path).lstrip("/")
            return os.path.join(root, *[p for p in relative.split("/") if p not in ("", ".", "..")])

        def send_head(self):
            path = self.translate_path(self.path)
            if not os.path.isfile(path):
                body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>'
                self.send_response(403)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return None
            return super().send_head()

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    serve(make_handler(os.path.abspath(args.root)), args.port_file)

if __name__ == "__main__":
    main()
