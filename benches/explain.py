#!/usr/bin/env python3
"""Query plans of the common searches, as Carnet runs them.

PostgreSQL (capture): turns on statement logging for the database, starts a
`carnet serve` on it, runs each search once, reads the statements and their bind
values back from the server log, and prints `EXPLAIN (ANALYZE, BUFFERS)` of each
SELECT; the statements are saved to --queries (JSON) for the SQLite run.

SQLite: the search SQL is the same on both backends (server/src/search/sql), so it
takes the statements captured on PostgreSQL at the same scale (--queries) and prints
`EXPLAIN QUERY PLAN` and the median time of five runs of each on the SQLite file.
"""
import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

PG_LOG = "/var/log/postgresql/postgresql-15-main.log"
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] (\S*)@(\S*) (LOG|DETAIL|ERROR|STATEMENT):\s+(.*)$")


def http(url, data=None, token=None):
    req = urllib.request.Request(url, data=data)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def psql(url, sql):
    return subprocess.run(["psql", url, "-X", "-q", "-At", "-c", sql], check=True, capture_output=True, text=True).stdout


def read_log(db, start):
    """(kind, text) entries of `db` after byte `start`, continuation lines joined."""
    entries = []
    with open(PG_LOG, "rb") as f:
        f.seek(start)
        for raw in f.read().decode("utf-8", "replace").splitlines():
            m = ENTRY.match(raw)
            if m:
                entries.append([m.group(2), m.group(3), m.group(4)])
            elif entries:
                entries[-1][2] += "\n" + raw
    return [(k, t) for d, k, t in entries if d == db]


def parse_params(detail):
    # parameters: $1 = 'Observation', $2 = '42', $3 = NULL
    out = {}
    for m in re.finditer(r"\$(\d+) = (NULL|'((?:[^']|'')*)')", detail):
        out[int(m.group(1))] = None if m.group(2) == "NULL" else m.group(3).replace("''", "'")
    return out


def literal(v):
    if v is None:
        return "NULL"
    return "'" + v.replace("'", "''") + "'"


def substitute(sql, params):
    for n in sorted(params, reverse=True):
        sql = re.sub(r"\$%d(?!\d)" % n, literal(params[n]), sql)
    return sql


def capture(args):
    db = args.url.rsplit("/", 1)[1].split("?")[0]
    admin = args.url.rsplit("/", 1)[0] + "/postgres"
    psql(admin, f"ALTER DATABASE {db} SET log_min_duration_statement = 0")
    start = os.path.getsize(PG_LOG)
    port = 41000 + os.getpid() % 10000
    server = subprocess.Popen(
        [args.carnet, "serve", "--database-url", args.url, "--listen", f"127.0.0.1:{port}",
         "--outbox-dir", "/tmp/carnet-explain-outbox", "--data-dir", "/tmp/carnet-explain-data"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, CARNET_LOG="warn"))
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(60):
            try:
                http(base + "/fhir/metadata")
                break
            except Exception:
                time.sleep(1)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": args.client_id,
                                       "client_secret": args.client_secret, "scope": "system/*.*"}).encode()
        token = json.loads(http(base + "/auth/token", form))["access_token"]
        for line in open(args.searches):
            name, path = line.rstrip("\n").split("\t")
            http(base + "/fhir/" + path, token=token)  # warm
            psql(args.url, f"SELECT 'carnet-search:{name}'")
            http(base + "/fhir/" + path, token=token)
            psql(args.url, "SELECT 'carnet-search:end'")
    finally:
        server.terminate()
        server.wait()
        psql(admin, f"ALTER DATABASE {db} RESET log_min_duration_statement")
    queries, current, last = {}, None, None
    for kind, text in read_log(db, start):
        m = re.search(r"carnet-search:([\w+-]+)", text)
        if kind == "LOG" and m:
            current = None if m.group(1) == "end" else m.group(1)
            if current:
                queries[current] = []
            continue
        if current is None:
            continue
        if kind == "LOG":
            m = re.match(r"duration: ([\d.]+) ms\s+execute [^:]*:\s*(.*)$", text, re.S)
            last = None
            sql = m.group(2).strip() if m else ""
            # Reads only (the audit trail's writes land in the same window), once each.
            reads = sql.upper().startswith("SELECT") and not re.search(r"\b(INSERT|DELETE|UPDATE)\b", sql.upper())
            if reads and all(q["sql"] != sql for q in queries[current]):
                last = {"ms": float(m.group(1)), "sql": sql, "params": {}}
                queries[current].append(last)
        elif kind == "DETAIL" and last is not None and text.startswith("parameters:"):
            last["params"] = {str(k): v for k, v in parse_params(text).items()}
    json.dump(queries, open(args.queries, "w"), indent=1)
    for name, stmts in queries.items():
        print(f"\n### {name}\n")
        for i, q in enumerate(stmts):
            params = {int(k): v for k, v in q["params"].items()}
            print(f"-- statement {i + 1} ({q['ms']:.2f} ms in the server)\n{q['sql']}\n-- binds: {params}")
            plan = psql(args.url, "EXPLAIN (ANALYZE, BUFFERS) " + substitute(q["sql"], params))
            print(plan)


def sqlite_plans(args):
    path = args.url.split("://", 1)[1]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    queries = json.load(open(args.queries))
    for name, stmts in queries.items():
        print(f"\n### {name}\n")
        for i, q in enumerate(stmts):
            params = {}
            for k, v in q["params"].items():
                params[k] = int(v) if v is not None and re.fullmatch(r"-?\d+", v) else v
            sql = q["sql"]
            # The projector's reads of PostgreSQL's audit log, captured alongside: on
            # SQLite the log is a file of its own, and not part of any search.
            if "audit_log" in sql:
                continue
            times = []
            for _ in range(5):
                t = time.perf_counter()
                conn.execute(sql, params).fetchall()
                times.append((time.perf_counter() - t) * 1000)
            print(f"-- statement {i + 1} (median {statistics.median(times):.2f} ms of 5 in python sqlite3 {sqlite3.sqlite_version})")
            for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
                print("  " * 0 + f"{row[0]:>3} {row[1]:>3} {row[3]}")
            print()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--searches", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--carnet")
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    args = p.parse_args()
    if args.backend == "postgres":
        capture(args)
    else:
        sqlite_plans(args)


if __name__ == "__main__":
    sys.exit(main())
