#!/usr/bin/env python3
"""Per-hop latency of fsync commits, from the PGBRANCH_HOP_TRACE files of pagefs and the pageserver.

Run pagefs and pgbranch-pageserver with PGBRANCH_HOP_TRACE=/tmp/x/trace (each writes
/tmp/x/trace.<pid> when it exits), drive a workload (one client: the hops of one commit must
not interleave with another's), stop both, then:

    scripts/hop-trace.py /tmp/x/trace

With --ops instead (`scripts/hop-trace.py --ops /tmp/x/trace`): per pagefs process, each FUSE
operation's count and time from its arrival to pagefs's reply (total, median, max, and how many
took over 100 us), e.g. for where a new branch's start waits on its mount. An operation replied
by another thread (an fsync answered later) is not counted.

With --reads (`scripts/hop-trace.py --reads /tmp/x/trace [--names FILE]`): every FUSE READ in
order, with its blocks and time, those over 100 us starred; FILE (`find MOUNT -printf '%i %P\n'`
while the mount is up) names the inodes.

Each fsync that committed something is one sample: from the kernel's first FUSE request of that
fsync (the WRITE of the dirty pages, then SETATTR for the file times, then FSYNC) to pagefs's
reply. The table shows the hops in the order of their median time, each with the median and p90
of the time since the previous hop (the latest earlier mark of that commit) and of the time since
the first request.
"""
import glob
import statistics
import sys

# The hops of one commit, in the order they happen. (name in the trace, label)
HOPS = [
    ("fuse_op_in:write", "FUSE WRITE arrives (writeback of the dirty pages)"),
    ("fuse_op_done:write", "WRITE handled (buffered in pagefs)"),
    ("fuse_op_in:setattr", "FUSE SETATTR arrives (file times)"),
    ("fuse_op_done:setattr", "SETATTR handled"),
    ("fuse_op_in:fsync", "FUSE FSYNC arrives"),
    ("commit_write", "pagefs: stream write starts"),
    ("commit_written", "pagefs: stream write returns"),
    ("srv_read", "pageserver: request read"),
    ("srv_round", "pageserver: round starts"),
    ("records_built", "pageserver: log records built (group leader)"),
    ("log_written", "pageserver: log record written"),
    ("log_synced", "pageserver: fdatasync done"),
    ("apply_locked", "pageserver: state lock taken for the apply"),
    ("applied", "pageserver: applied to memory"),
    ("srv_answered", "pageserver: answer written"),
    ("answer_read", "pagefs: answer read"),
    ("fsync_reply_later", "pagefs: FSYNC thread returns, reply left for later"),
    ("fsync_durable", "pagefs: the fsync's commit is durable (answer reader)"),
    ("fuse_op_done:fsync", "FSYNC replied"),
]


# Hops that can start a commit.
STARTS = ("fuse_op_in:write", "fuse_op_in:setattr", "fuse_op_in:fsync", "commit_write")


def load(prefix):
    events = []
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 4:
                    events.append((int(parts[0]), parts[2], int(parts[3])))
    events.sort()
    return events


def samples(events):
    """One dict hop -> ns per fsync that issued a commit: the first mark of each hop between the
    reply to the previous fsync and the reply to this one (a WAL WRITE issues its commit before
    the FSYNC arrives, so the commit's hops may precede it)."""
    out = []
    names = {h for h, _ in HOPS}
    last_fsync_done = 0
    window = []
    in_fsync = False
    for t, hop, _ in events:
        if hop == "fuse_op_in:fsync":
            if in_fsync:
                window = []  # another fsync overlaps this one: not a clean sample
                in_fsync = False
                continue
            in_fsync = True
        if hop in names:
            window.append((t, hop))
        if hop == "fuse_op_done:fsync":
            if in_fsync:
                marks = {}
                for tw, hw in window:
                    if tw > last_fsync_done and tw >= t - 5_000_000:
                        marks.setdefault(hw, tw)
                # The commit's first hop: the kernel's first request, or pagefs's write. (The
                # previous commit's answer may be marked after the previous reply.)
                first = min((marks[h] for h in STARTS if h in marks), default=t)
                marks = {h: tm for h, tm in marks.items() if tm >= first}
                if "log_synced" in marks:
                    out.append(marks)
            last_fsync_done = t
            window = []
            in_fsync = False
    return out


def fuse_ops(prefix):
    """Per trace file with FUSE operations: op -> list of durations (ns), paired per thread."""
    out = {}
    for path in sorted(glob.glob(prefix + ".*")):
        started = {}
        ops = {}
        with open(path) as f:
            rows = sorted(tuple(line.split()) for line in f if len(line.split()) == 4)
        for t, tid, hop, _ in sorted(rows, key=lambda r: int(r[0])):
            if hop.startswith("fuse_op_in:"):
                started[tid] = (int(t), hop[len("fuse_op_in:"):])
            elif hop.startswith("fuse_op_done:") and tid in started:
                t0, op = started.pop(tid)
                if op == hop[len("fuse_op_done:"):]:
                    ops.setdefault(op, []).append(int(t) - t0)
        if ops:
            out[path] = ops
    return out


def print_ops(prefix):
    per_file = fuse_ops(prefix)
    if not per_file:
        sys.exit("no FUSE operation in " + prefix + ".*")
    for path, ops in per_file.items():
        print(f"{path}: FUSE operations, arrival to reply")
        print(f"{'op':<12} {'count':>6} {'total ms':>9} {'median us':>10} {'max us':>8} {'> 100 us':>9}")
        for op, ds in sorted(ops.items(), key=lambda kv: -sum(kv[1])):
            print(f"{op:<12} {len(ds):>6} {sum(ds) / 1e6:>9.1f} {statistics.median(ds) / 1e3:>10.0f}"
                  f" {max(ds) / 1e3:>8.0f} {sum(1 for d in ds if d > 100_000):>9}")


def print_reads(prefix, names):
    """Every FUSE READ of each pagefs trace: when (ms after the trace's first FUSE operation),
    which inode (its path if --names maps it), which blocks, and how long pagefs took."""
    found = False
    for path in sorted(glob.glob(prefix + ".*")):
        with open(path) as f:
            rows = sorted((int(r[0]), r[1], r[2], int(r[3]))
                          for r in (line.split() for line in f) if len(r) == 4)
        first = next((t for t, _, hop, _ in rows if hop.startswith("fuse_op_in:")), None)
        if first is None:
            continue
        pending = {}  # thread -> (arrival, inode, first block, pages)
        reads = []
        for t, tid, hop, ident in rows:
            if hop == "read_at":
                pending[tid] = (t, ident >> 40, ident & ((1 << 28) - 1), (ident >> 28) & 0xFFF)
            elif hop == "fuse_op_done:read" and tid in pending:
                t0, ino, block, pages = pending.pop(tid)
                reads.append((t0, ino, block, pages, t - t0))
        if not reads:
            continue
        found = True
        print(f"{path}: {len(reads)} READs, {sum(1 for r in reads if r[4] > 100_000)} over 100 us")
        print(f"{'at ms':>8} {'us':>6}  {'blocks':>12}  file")
        for t0, ino, block, pages, d in reads:
            span = f"{block}" if pages <= 1 else f"{block}-{block + pages - 1}"
            mark = " *" if d > 100_000 else ""
            print(f"{(t0 - first) / 1e6:>8.1f} {d / 1e3:>6.0f}  {span:>12}  "
                  f"{names.get(ino, 'inode ' + str(ino))}{mark}")
    if not found:
        sys.exit("no FUSE READ in " + prefix + ".* (a pagefs of this tree, run with "
                 "PGBRANCH_HOP_TRACE, writes them when it exits)")


def load_names(path):
    """`find MOUNT -printf '%i %P\\n'` output: inode -> path."""
    names = {}
    with open(path) as f:
        for line in f:
            ino, _, name = line.rstrip("\n").partition(" ")
            if ino.isdigit():
                names[int(ino)] = name
    return names


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--ops":
        print_ops(sys.argv[2])
        return
    if len(sys.argv) >= 3 and sys.argv[1] == "--reads":
        names = {}
        if len(sys.argv) == 5 and sys.argv[3] == "--names":
            names = load_names(sys.argv[4])
        print_reads(sys.argv[2], names)
        return
    if len(sys.argv) != 2:
        sys.exit("usage: hop-trace.py [--ops | --reads] PREFIX [--names FILE]  (PREFIX: the value "
                 "of PGBRANCH_HOP_TRACE)")
    commits = samples(load(sys.argv[1]))
    if not commits:
        sys.exit("no complete fsync commit in " + sys.argv[1] + ".*")
    print(f"{len(commits)} fsync commits; times in microseconds (median / p90)")
    print(f"{'hop':<52} {'since previous':>16} {'since first':>14}")

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    def median_since_first(hop):
        xs = [m[hop] - min(m.values()) for m in commits if hop in m]
        return statistics.median(xs) if xs else float("inf")

    order = sorted(HOPS, key=lambda h: median_since_first(h[0]))
    for k, (hop, label) in enumerate(order):
        deltas, totals = [], []
        for m in commits:
            if hop not in m:
                continue
            first = min(m.values())
            prev = max((m[h] for h, _ in order[:k] if h in m and m[h] <= m[hop]), default=None)
            totals.append((m[hop] - first) / 1000)
            if prev is not None:
                deltas.append((m[hop] - prev) / 1000)
        if not totals:
            print(f"{label:<52} {'(absent)':>16}")
            continue
        d = f"{statistics.median(deltas):.0f} / {q(deltas, 0.9):.0f}" if deltas else "-"
        print(f"{label:<52} {d:>16} {statistics.median(totals):>6.0f} / {q(totals, 0.9):<5.0f}"
              f"  (in {len(totals)})")


if __name__ == "__main__":
    main()
