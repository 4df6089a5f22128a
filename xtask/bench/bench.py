#!/usr/bin/env python3
"""natgw benchmark runner: times aws-natgw and its peers doing the same work on the same inputs,
side by side in one run (taking turns, run after run), after checking that every tool's answers
agree.

Work: for the NAT gateway's egress records, (1) records per unique destination (the knowledge-center
query 1, per destination) and (2) the peak number of distinct NAT source ports per destination in one
60-second window (start // 60). Called by `cargo xtask bench` with a JSON config on stdin.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

MEASURE = r"""
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.write(f"{wall} {rss} {r.returncode}\n")
sys.stderr.write(r.stderr.decode(errors="replace"))
"""

DUCKDB = r"""
import duckdb, sys
path, nat, prefix, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
internal = ' OR '.join(f"starts_with(dstaddr, '{p}')" for p in prefix.split(','))
cols = {c: 'VARCHAR' for c in ['version','account-id','interface-id','srcaddr','dstaddr','srcport','dstport','protocol','packets','bytes','start','end','action','log-status']}
rows = con.execute(f'''
WITH eg AS (
  SELECT dstaddr, CAST(dstport AS INTEGER) AS dstport, CAST(protocol AS INTEGER) AS protocol,
         CAST(srcport AS INTEGER) AS srcport, CAST("start" AS BIGINT) // 60 AS minute
  FROM read_csv(?, delim=' ', header=true, columns={cols!r}, auto_detect=false)
  WHERE srcaddr = ? AND NOT ({internal})
), rec AS (SELECT dstaddr, dstport, protocol, count(*) AS records FROM eg GROUP BY ALL),
   ppm AS (SELECT dstaddr, dstport, protocol, max(n) AS ports FROM
            (SELECT dstaddr, dstport, protocol, minute, count(DISTINCT srcport) AS n FROM eg GROUP BY ALL) GROUP BY ALL)
SELECT rec.dstaddr, rec.dstport, rec.protocol, records, ports FROM rec JOIN ppm USING (dstaddr, dstport, protocol)
ORDER BY ALL''', [path, nat]).fetchall()
for r in rows:
    print(*r)
"""

POLARS = r"""
import polars as pl, sys
path, nat, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
schema = {'version': pl.Int64, 'account-id': pl.Utf8, 'interface-id': pl.Utf8, 'srcaddr': pl.Utf8, 'dstaddr': pl.Utf8,
          'srcport': pl.Int64, 'dstport': pl.Int64, 'protocol': pl.Int64, 'packets': pl.Int64, 'bytes': pl.Int64,
          'start': pl.Int64, 'end': pl.Int64, 'action': pl.Utf8, 'log-status': pl.Utf8}
key = ['dstaddr', 'dstport', 'protocol']
eg = (pl.scan_csv(path, separator=' ', has_header=True, null_values=['-'], schema=schema)
        .filter((pl.col('srcaddr') == nat) & ~pl.any_horizontal([pl.col('dstaddr').str.starts_with(p) for p in prefix.split(',')]))
        .select(key + ['srcport', (pl.col('start') // 60).alias('minute')]))
rec = eg.group_by(key).agg(pl.len().alias('records'))
ppm = eg.group_by(key + ['minute']).agg(pl.col('srcport').n_unique().alias('n')).group_by(key).agg(pl.col('n').max().alias('ports'))
out = rec.join(ppm, on=key).sort(key).collect()
for r in out.iter_rows():
    print(*r)
"""

MAWK = r"""BEGIN { np = split(prefix, pre, ",") }
NR > 1 && $4 == nat && !internal($5) {
  k = $5 " " $7 " " $8; rec[k]++
  m = k SUBSEP int($11 / 60)
  if (!((m, $6) in seen)) { seen[m, $6] = 1; n[m]++; if (n[m] > ports[k]) ports[k] = n[m] }
}
END { for (k in rec) print k, rec[k], ports[k] }
function internal(a,   i) { for (i = 1; i <= np; i++) if (index(a, pre[i]) == 1) return 1; return 0 }"""


def run_once(cmd):
    """Wall time (s) and peak RSS (KiB) of one run of `cmd`."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    wall, rss, code = out.stdout.split()
    if int(code) not in (0, 4, 5):
        raise SystemExit(f"{cmd[0]} failed ({code}): {out.stderr[-2000:]}")
    return float(wall), int(rss)


def time_all(tools, runs):
    """Rows [name, median wall, peak RSS, fastest, slowest, median ratio to the first tool] of every
    tool. The tools take turns, run after run (after one warm-up each), so that a slow spell of the
    machine falls on all of them alike; the ratio is the median of each round's ratio."""
    for cmd in tools.values():
        run_once(cmd)
    walls = {name: [] for name in tools}
    rsss = {name: 0 for name in tools}
    for _ in range(runs):
        for name, cmd in tools.items():
            wall, rss = run_once(cmd)
            walls[name].append(wall)
            rsss[name] = max(rsss[name], rss)
    first = walls[next(iter(tools))]
    rows = []
    for name, w in walls.items():
        ratio = statistics.median(x / f for x, f in zip(w, first))
        rows.append([name, statistics.median(w), rsss[name], min(w), max(w), ratio])
        print(f"{name:24} {rows[-1][1]:7.3f} s ({min(w):.3f}-{max(w):.3f})  {rsss[name] / 1024:8.1f} MiB  {ratio:5.2f}x",
              file=sys.stderr)
    return rows


def answers_of(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 4, 5):
        raise SystemExit(f"{cmd} failed: {out.stderr[-2000:]}")
    return out.stdout


def parse_rows(text):
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5:
            rows[(parts[0], int(parts[1]), int(parts[2]))] = (int(parts[3]), int(parts[4]))
    return rows


def natgw_rows(text):
    report = json.loads(text)
    rows = {}
    for d in report["destinations"]:
        rows[(d["address"], d["port"], d["protocol"])] = (d["records"], d["evidence"]["max_ports_per_minute"])
    return rows


def main():
    cfg = json.load(sys.stdin)
    inputs, natgw, py, runs = cfg["inputs"], cfg["natgw"], cfg["python"], cfg["runs"]
    plain, nat = inputs["plain"], inputs["nat_ip"]
    cidrs = inputs["vpc_cidrs"]
    # Every VPC block, as dotted prefixes for the peers (each block is a /16).
    assert all(c.endswith("/16") for c in cidrs), "the peers' prefix filter assumes /16 blocks"
    prefix = ",".join(".".join(c.split("/")[0].split(".")[:2]) + "." for c in cidrs)
    size = os.path.getsize(plain)
    common = ["--nat-ip", nat, *[a for c in cidrs for a in ("--vpc-cidr", c)], "--top", "65535", "--output", "json"]

    tools = {
        "aws-natgw": [natgw, "analyze", plain, *common],
        "aws-natgw --threads 1": [natgw, "analyze", plain, *common, "--threads", "1"],
        "polars": [py, "-c", POLARS, plain, nat, prefix],
        "DuckDB": [py, "-c", DUCKDB, plain, nat, prefix, "2"],
        "mawk": ["mawk", "-v", f"nat={nat}", "-v", f"prefix={prefix}", MAWK, plain],
    }
    # Check the answers first: every tool, every destination aws-natgw lists.
    want = natgw_rows(answers_of(tools["aws-natgw"]))
    for name, cmd in tools.items():
        got = natgw_rows(answers_of(cmd)) if name.startswith("aws-natgw") else parse_rows(answers_of(cmd))
        if got != want:
            diff = {k: (want.get(k), got.get(k)) for k in set(want) | set(got) if want.get(k) != got.get(k)}
            raise SystemExit(f"{name} disagrees with aws-natgw on {len(diff)} destinations, e.g. {list(diff.items())[:3]}")
        print(f"answers agree: {name} ({len(got)} destinations)", file=sys.stderr)

    floors = {"cat > /dev/null": ["sh", "-c", f"cat '{plain}' > /dev/null"], "wc -l": ["wc", "-l", plain]}
    results = time_all({**tools, **floors}, runs)

    gz = sorted(os.path.join(inputs["gz_dir"], f) for f in os.listdir(inputs["gz_dir"]))
    gz_size = sum(os.path.getsize(f) for f in gz)
    gz_tools = {"aws-natgw (1,000 .gz)": [natgw, "analyze", *gz, *common]}
    if subprocess.run(["sh", "-c", "command -v pigz"], capture_output=True).returncode == 0:
        gz_tools["pigz -dc > /dev/null"] = ["sh", "-c", "pigz -dc \"$@\" > /dev/null", "sh", *gz]
    gz_tools["gzip -dc > /dev/null"] = ["sh", "-c", "gzip -dc \"$@\" > /dev/null", "sh", *gz]
    if natgw_rows(answers_of(gz_tools["aws-natgw (1,000 .gz)"])) != want:
        raise SystemExit("aws-natgw on the gzip files disagrees with aws-natgw on the plain file")
    gz_results = time_all(gz_tools, runs)

    # The same lines as one gzip file: one stream, which no tool can cut into chunks.
    one = inputs["one_gz"]
    one_tools = {"aws-natgw (one .gz)": [natgw, "analyze", one, *common]}
    if "pigz -dc > /dev/null" in gz_tools:
        one_tools["pigz -dc > /dev/null"] = ["sh", "-c", "pigz -dc \"$1\" > /dev/null", "sh", one]
    if natgw_rows(answers_of(one_tools["aws-natgw (one .gz)"])) != want:
        raise SystemExit("aws-natgw on the single gzip file disagrees with aws-natgw on the plain file")
    one_results = time_all(one_tools, runs)

    custom = [natgw, "analyze", inputs["custom"], *common]
    [[_, custom_wall, custom_rss, *_]] = time_all({"aws-natgw (custom format)": custom}, runs)

    # The plain file's lines several times over in time: the peak RSS as the input grows. Each copy
    # repeats the first's traffic, minute bins aligned: its records add up, its per-minute peaks do not.
    long, copies = inputs["long"], inputs["long_copies"]
    long_cmd = [natgw, "analyze", long, *common]
    want_long = {k: (records * copies, ports) for k, (records, ports) in want.items()}
    if natgw_rows(answers_of(long_cmd)) != want_long:
        raise SystemExit(f"aws-natgw on {copies} copies in time disagrees with aws-natgw on the plain file")
    [[_, long_wall, long_rss, *_]] = time_all({f"aws-natgw ({copies} copies in time)": long_cmd}, runs)

    json.dump({
        "machine": {"cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "cpu": platform.processor() or platform.machine()},
        "lines": inputs["lines"], "bytes": size, "gz_bytes": gz_size, "runs": runs,
        "plain": results, "gz": gz_results, "one_gz": one_results, "one_gz_bytes": os.path.getsize(one), "custom": [custom_wall, custom_rss, os.path.getsize(inputs["custom"])],
        "long": {"wall": long_wall, "rss": long_rss, "bytes": os.path.getsize(long), "copies": copies, "shift": inputs["long_shift"]},
        "destinations": len(want),
    }, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
