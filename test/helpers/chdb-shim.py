"""
A ClickHouse HTTP endpoint in front of chdb (in-process ClickHouse of a current release), enough
for @clickhouse/client: GET /ping, and POST / with the statement in the body or in the `query`
parameter followed by the body (inserts: `INSERT ... FORMAT JSONEachRow` plus the rows). Errors
answer HTTP 500 with ClickHouse's "Code: N. DB::Exception: ..." text. Every statement is logged
as one JSON line (statement, ok, error) to the file given with --log.

usage: chdb-shim.py --port N --data DIR --log FILE
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from chdb import session

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--log", required=True)
args = parser.parse_args()

sess = session.Session(args.data)
lock = threading.Lock()
log = open(args.log, "a", encoding="utf-8")


def run(sql):
    with lock:
        try:
            res = sess.query(sql, "TabSeparated")
            out = res.bytes() if hasattr(res, "bytes") else bytes(res)
            log.write(json.dumps({"statement": sql[:20000], "ok": True}) + "\n")
            log.flush()
            return 200, out
        except Exception as e:  # chdb raises RuntimeError with the server's message
            msg = str(e)
            log.write(json.dumps({"statement": sql[:20000], "ok": False, "error": msg}) + "\n")
            log.flush()
            if not msg.startswith("Code:"):
                msg = "Code: 1000. DB::Exception: " + msg
            return 500, msg.encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, query_id=""):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Query-Id", query_id)
        if status != 200:
            self.send_header("X-ClickHouse-Exception-Code", "1000")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        if u.path in ("/ping", "/"):
            params = parse_qs(u.query)
            if "query" in params:
                status, out = run(params["query"][0])
                return self.reply(status, out)
            return self.reply(200, b"Ok.\n")
        self.reply(404, b"Code: 1000. DB::Exception: not found")

    def do_POST(self):
        u = urlparse(self.path)
        params = parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8") if n else ""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        sql = params["query"][0] + "\n" + body if "query" in params else body
        status, out = run(sql)
        self.reply(status, out, params.get("query_id", [""])[0])

    def read_chunked(self):
        parts = []
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        return b"".join(parts).decode("utf-8")


version = sess.query("SELECT version()", "TabSeparated").bytes().decode().strip()
server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"listening {args.port} clickhouse {version}", flush=True)
sys.stdout.flush()
server.serve_forever()
