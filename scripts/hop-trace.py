#!/usr/bin/env python3
"""Per-hop latency of fsync commits, from the PGBRANCH_HOP_TRACE files of pagefs and the pageserver.

Run pagefs and pgbranch-pageserver with PGBRANCH_HOP_TRACE=/tmp/x/trace (each writes
/tmp/x/trace.<pid> when it exits), drive a workload (one client: the hops of one commit must
not interleave with another's), stop both, then:

    scripts/hop-trace.py /tmp/x/trace

Each fsync that committed something is one sample: from the kernel's first FUSE request of that
fsync (the WRITE of the dirty pages, then SETATTR for the file times, then FSYNC) to pagefs's
reply. The table shows, for each hop, the median and p90 of the time since the previous hop and
of the time since the first request.
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
    ("log_written", "pageserver: log record written"),
    ("log_synced", "pageserver: fdatasync done"),
    ("srv_answered", "pageserver: answer written"),
    ("answer_read", "pagefs: answer read"),
    ("fsync_replied_by_reader", "pagefs: answer reader replies to FSYNC"),
    ("fsync_durable", "pagefs: FSYNC thread sees it durable"),
    ("fuse_op_done:fsync", "FSYNC thread done (replies if the reader did not)"),
]


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
    """One dict hop -> ns per fsync that issued a commit."""
    out = []
    last_fsync_done = 0
    i = 0
    while i < len(events):
        t, hop, _ = events[i]
        if hop != "fuse_op_in:fsync":
            if hop == "fuse_op_done:fsync":
                last_fsync_done = t
            i += 1
            continue
        marks = {"fuse_op_in:fsync": t}
        # The WRITE and SETATTR the kernel sent for this fsync: the last ones since the previous
        # fsync's reply.
        for tb, hb, _ in reversed(events[:i]):
            if tb <= last_fsync_done or tb < t - 5_000_000:
                break
            for h in ("fuse_op_in:write", "fuse_op_done:write", "fuse_op_in:setattr",
                      "fuse_op_done:setattr"):
                if hb == h and h not in marks:
                    marks[h] = tb
        j = i + 1
        while j < len(events):
            tj, hj, _ = events[j]
            if hj == "fuse_op_done:fsync":
                marks.setdefault(hj, tj)
                last_fsync_done = tj
                break
            if hj == "fuse_op_in:fsync":
                break  # another fsync overlaps this one: not a clean sample
            marks.setdefault(hj, tj)
            j += 1
        if "fuse_op_done:fsync" in marks and "log_synced" in marks:
            out.append(marks)
        i = j + 1 if j < len(events) and events[j][1] == "fuse_op_done:fsync" else i + 1
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: hop-trace.py PREFIX  (the value of PGBRANCH_HOP_TRACE)")
    commits = samples(load(sys.argv[1]))
    if not commits:
        sys.exit("no complete fsync commit in " + sys.argv[1] + ".*")
    print(f"{len(commits)} fsync commits; times in microseconds (median / p90)")
    print(f"{'hop':<52} {'since previous':>16} {'since first':>14}")

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    for k, (hop, label) in enumerate(HOPS):
        deltas, totals = [], []
        for m in commits:
            if hop not in m:
                continue
            first = min(m.values())
            prev = next((m[h] for h, _ in reversed(HOPS[:k]) if h in m), None)
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
