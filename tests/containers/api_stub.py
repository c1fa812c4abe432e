#!/usr/bin/env python3
"""api_stub.py — a stand-in for the Kubernetes API server of deploy/hooks/k8s-label.sh: on
127.0.0.1:PORT it answers every PATCH of /api/v1/namespaces/NS/pods/POD with 200 and appends
one JSON line per request to RECORD: {"path", "auth", "content_type", "body"}. Anything else
is 404. Usage: api_stub.py PORT RECORD (runs until killed)."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_PATCH(self):
        length = min(int(self.headers.get("Content-Length", "0")), 65536)
        body = self.rfile.read(length).decode("utf-8", "replace")
        ok = self.path.startswith("/api/v1/namespaces/") and "/pods/" in self.path
        if ok:
            with open(sys.argv[2], "a") as f:
                f.write(json.dumps({"path": self.path,
                                    "auth": self.headers.get("Authorization", ""),
                                    "content_type": self.headers.get("Content-Type", ""),
                                    "body": body}) + "\n")
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
