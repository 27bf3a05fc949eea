#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Tables from a `make bench` run.

usage: scripts/bench-report.py RESULTS_DIR

RESULTS_DIR holds one directory per kernel with bench/cells.jsonl (written by
selftests/bench/guest-bench.sh in the VM) and fio's JSON files. Prints two
tables per kernel and writes RESULTS_DIR/results.json and results.md: per
device, job and back-end the median of the repetitions and their spread
(min-max). Data plane: the back-end's IOPS as a ratio to vhost-blk and to
fio on the raw device. Guest level (fio in a level-2 guest): the ratio to
vhostblkctl serve (the in-kernel data path) and to the better of QEMU's own
virtio-blk with aio=native and aio=io_uring.
"""
import json
import os
import statistics
import sys

ORDER = ["vhost-blk", "vhost-blk-poll", "serve", "qsd", "qsd-poll0", "fio"]
NAMES = {"vhost-blk": "vhost-blk (ioctl)",
         "vhost-blk-poll": "vhost-blk (ioctl), busy-poll", "serve": "vhostblkctl serve",
         "qsd": "qemu-storage-daemon",
         "qsd-poll0": "qemu-storage-daemon poll-max-ns=0",
         "fio": "raw device (fio)"}
L2_ORDER = ["serve", "qsd", "qemu-native", "qemu-uring"]
L2_NAMES = {"serve": "vhost-user-blk: vhostblkctl serve",
            "qsd": "vhost-user-blk: qemu-storage-daemon",
            "qemu-native": "QEMU virtio-blk aio=native",
            "qemu-uring": "QEMU virtio-blk aio=io_uring"}


def fio_cell(cell, d):
    """The tool's figures from fio's JSON: IOPS, clat p50/p99, CPU per I/O."""
    with open(os.path.join(d, cell["fio_json"])) as f:
        j = json.load(f)["jobs"][0]
    side = j["write"] if cell["rw"] in ("write", "randwrite") else j["read"]
    ios = side["total_ios"]
    pct = side["clat_ns"].get("percentile", {})
    # usr_cpu/sys_cpu are per job; job_runtime is in ms.
    cpu_us = (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] * 1000 \
        * cell["queues"]
    cell.update(iops=side["iops"], ios=ios,
                p50_us=pct.get("50.000000", 0) / 1000,
                p99_us=pct.get("99.000000", 0) / 1000,
                backend_cpu_us_per_io=None,
                tool_cpu_us_per_io=cpu_us / ios if ios else None)
    return cell


def load(kdir):
    """Data-plane cells, guest-level cells, guest-level failures."""
    cells, guest, failed = [], [], []
    path = os.path.join(kdir, "bench", "cells.jsonl")
    if not os.path.exists(path):
        return cells, guest, failed
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            c = json.loads(line)
            if c.get("level") == "guest":
                (failed if c.get("failed") else guest).append(c)
                continue
            if c.get("failed"):
                continue
            if c["label"] == "fio":
                try:
                    c = fio_cell(c, os.path.join(kdir, "bench"))
                except (OSError, ValueError, KeyError) as e:
                    print(f"bench-report: {c.get('fio_json')}: {e}", file=sys.stderr)
                    continue
            cells.append(c)
    return cells, guest, failed


def summary(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def aggregate(cells):
    """{(dev, job): {label: {figure: summary}}} in first-seen order."""
    out = {}
    for c in cells:
        row = out.setdefault((c["dev"], c["job"]), {})
        row.setdefault(c["label"], []).append(c)
    res = {}
    for key, row in out.items():
        res[key] = {}
        for label, cs in row.items():
            s = {k: summary([c.get(k) for c in cs]) for k in
                 ("iops", "p50_us", "p99_us", "backend_cpu_us_per_io",
                  "tool_cpu_us_per_io")}
            if label != "fio":
                ios = sum(c["ios"] for c in cs)
                s["ios_per_kick"] = ios / max(1, sum(c["kicks"] for c in cs))
                s["ios_per_call"] = ios / max(1, sum(c["calls"] for c in cs))
            s["cell"] = {k: cs[0][k] for k in ("rw", "bs", "qd", "queues")}
            res[key][label] = s
    for row in res.values():
        base = row.get("vhost-blk", {}).get("iops")
        raw = row.get("fio", {}).get("iops")
        for s in row.values():
            m = s["iops"]["median"] if s["iops"] else None
            s["vs_vhost_blk"] = m / base["median"] if m and base else None
            s["vs_raw"] = m / raw["median"] if m and raw else None
    return res


def aggregate_guest(cells):
    """{(dev, job): {label: {figure: summary}}} for the guest level."""
    out = {}
    for c in cells:
        out.setdefault((c["dev"], c["job"]), {}).setdefault(c["label"], []).append(c)
    res = {}
    for key, row in out.items():
        res[key] = {lb: {k: summary([c.get(k) for c in cs]) for k in
                         ("iops", "p50_us", "p99_us", "guest_cpu_us_per_io")}
                    for lb, cs in row.items()}
        for lb, s in res[key].items():
            s["cell"] = {k: row[lb][0][k] for k in ("rw", "bs", "qd", "queues")}
    for row in res.values():
        med = {lb: s["iops"]["median"] for lb, s in row.items() if s["iops"]}
        base = med.get("serve")
        qemu = [lb for lb in ("qemu-native", "qemu-uring") if lb in med]
        best = max(qemu, key=lambda lb: med[lb]) if qemu else None
        for lb, s in row.items():
            m = med.get(lb)
            s["vs_serve"] = m / base if m and base else None
            s["vs_qemu_best"] = m / med[best] if m and best else None
            s["qemu_best"] = best
    return res


def table_guest(res):
    head = ["device", "job", "back-end", "IOPS median (min-max)", "p50 us",
            "p99 us", "guest CPU us/IO", "x serve", "x QEMU best"]
    rows = []
    for (dev, job), row in res.items():
        for label in sorted(row, key=lambda x: L2_ORDER.index(x) if x in L2_ORDER else 99):
            s = row[label]
            med = lambda k, nd=0: fmt(s[k]["median"], nd) if s.get(k) else "-"
            name = L2_NAMES.get(label, label)
            if label == s.get("qemu_best"):
                name += " *"
            rows.append([dev, job, name, fmt_iops(s["iops"]), med("p50_us", 0),
                         med("p99_us", 0), med("guest_cpu_us_per_io", 1),
                         fmt(s["vs_serve"], 2), fmt(s["vs_qemu_best"], 2)])
    return head, rows


def geomean(xs):
    xs = [x for x in xs if x]
    if not xs:
        return None
    p = 1.0
    for x in xs:
        p *= x
    return p ** (1 / len(xs))


def ratios(res, num, den, key="iops"):
    """Per-cell median ratios num/den over the rows that have both."""
    out = []
    for row in res.values():
        a, b = row.get(num, {}).get(key), row.get(den, {}).get(key)
        if a and b and b["median"]:
            out.append(a["median"] / b["median"])
    return out


def fmt_ratio(xs):
    g = geomean(xs)
    if g is None:
        return "-"
    return f"{g:.2f}x ({min(xs):.2f}-{max(xs):.2f}, {len(xs)} cells)"


def summary_lines(res, gres):
    """Geometric means of the ratios that answer the issue's questions."""
    lines = []
    for num, den, what in (("vhost-blk", "qsd", "vhost-blk / qsd IOPS"),
                           ("vhost-blk", "qsd-poll0", "vhost-blk / qsd poll-max-ns=0 IOPS"),
                           ("qsd-poll0", "qsd", "qsd poll-max-ns=0 / qsd IOPS"),
                           ("serve", "vhost-blk", "serve / vhost-blk IOPS"),
                           ("vhost-blk", "fio", "vhost-blk / raw IOPS"),
                           ("vhost-blk-poll", "vhost-blk", "busy-poll / no poll IOPS")):
        lines.append((f"data plane: {what}", fmt_ratio(ratios(res, num, den))))
    for num, den, what in (("qsd", "vhost-blk", "qsd / vhost-blk backend CPU per I/O"),
                           ("qsd-poll0", "vhost-blk",
                            "qsd poll-max-ns=0 / vhost-blk backend CPU per I/O"),
                           ("vhost-blk-poll", "vhost-blk",
                            "busy-poll / no poll backend CPU per I/O")):
        lines.append((f"data plane: {what}",
                      fmt_ratio(ratios(res, num, den, "backend_cpu_us_per_io"))))
    best = []
    for row in gres.values():
        b = next(iter(row.values())).get("qemu_best")
        if "serve" in row and b and row["serve"]["iops"] and row[b]["iops"]:
            best.append(row["serve"]["iops"]["median"] / row[b]["iops"]["median"])
    lines.append(("guest level: serve / better QEMU virtio-blk IOPS", fmt_ratio(best)))
    lines.append(("guest level: serve / qsd IOPS", fmt_ratio(ratios(gres, "serve", "qsd"))))
    return lines


def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def fmt_iops(s):
    if not s:
        return "-"
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def table(res):
    head = ["device", "job", "back-end", "IOPS median (min-max)", "p50 us",
            "p99 us", "backend CPU us/IO", "tool CPU us/IO", "IO/kick",
            "IO/call", "x vhost-blk", "x raw"]
    rows = []
    for (dev, job), row in res.items():
        for label in sorted(row, key=lambda x: ORDER.index(x) if x in ORDER else 99):
            s = row[label]
            med = lambda k, nd=0: fmt(s[k]["median"], nd) if s.get(k) else "-"
            rows.append([dev, job, NAMES.get(label, label), fmt_iops(s["iops"]),
                         med("p50_us", 1), med("p99_us", 1),
                         med("backend_cpu_us_per_io", 1),
                         med("tool_cpu_us_per_io", 1),
                         fmt(s.get("ios_per_kick"), 1),
                         fmt(s.get("ios_per_call"), 1),
                         fmt(s["vs_vhost_blk"], 2), fmt(s["vs_raw"], 2)])
    return head, rows


def text(head, rows):
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w[i]) if i < 3 else str(c).rjust(w[i])
                               for i, c in enumerate(r))
    out = [line(head), "  ".join("-" * x for x in w)]
    prev = None
    for r in rows:
        if prev and r[:2] != prev[:2] and r[0] != prev[0]:
            out.append("")
        out.append(line(r))
        prev = r
    return "\n".join(out)


def markdown(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def meta(kdir):
    m = {}
    p = os.path.join(kdir, "bench", "seconds")
    if os.path.exists(p):
        m["guest_seconds"] = int(open(p).read().strip() or 0)
    p = os.path.join(kdir, "bench", "devices.jsonl")
    if os.path.exists(p):
        m["devices"] = [json.loads(x) for x in open(p) if x.strip()]
    return m


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    top = sys.argv[1]
    doc, md = {}, []
    for k in sorted(os.listdir(top)):
        kdir = os.path.join(top, k)
        if not os.path.isdir(os.path.join(kdir, "bench")):
            continue
        cells, gcells, gfailed = load(kdir)
        res = aggregate(cells)
        gres = aggregate_guest(gcells)
        m = meta(kdir)
        summ = summary_lines(res, gres)
        doc[k] = {"meta": m, "results": [
            {"dev": d, "job": j, "backend": lb, **s}
            for (d, j), row in res.items() for lb, s in row.items()],
            "guest_results": [
            {"dev": d, "job": j, "backend": lb, **s}
            for (d, j), row in gres.items() for lb, s in row.items()],
            "guest_failed": gfailed, "summary": dict(summ)}
        if not res and not gres:
            print(f"== {k}: no results (see {kdir}/bench/errors.log)")
            continue
        md += [f"## {k} ({m.get('guest_seconds', '?')} s in the VM)", "",
               "| ratio (geometric mean of per-cell medians) | value (range) |",
               "|---|---|"] + [f"| {a} | {b} |" for a, b in summ] + [""]
        print(f"== {k}: summary")
        print("\n".join(f"   {a}: {b}" for a, b in summ) + "\n")
        if res:
            head, rows = table(res)
            devs = ", ".join(f"{d['dev']}={d['path']} sched={d['scheduler']} "
                             f"wbt={d['wbt_lat_usec']}" for d in m.get("devices", []))
            title = f"{k}: data plane, no guest"
            print(f"== {title}\n   {devs}\n{text(head, rows)}\n")
            md += [f"### {title}", "", devs, "", markdown(head, rows), ""]
        if gres or gfailed:
            title = f"{k}: guest level, fio in a level-2 guest"
            fails = [f"FAILED: {c['dev']} {c['label']}: {c.get('reason', '?')}"
                     for c in gfailed]
            note = "* = the better of QEMU's aio=native and aio=io_uring (x QEMU best is against it)"
            out = [f"== {title}", "   " + note]
            mdl = [f"### {title}", "", note, ""]
            if gres:
                head, rows = table_guest(gres)
                out.append(text(head, rows))
                mdl.append(markdown(head, rows))
            out += fails
            mdl += [""] + [f"- {x}" for x in fails]
            print("\n".join(out) + "\n")
            md += mdl + [""]
    with open(os.path.join(top, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(top, "results.md"), "w") as f:
        f.write("# make bench results\n\n" + "\n".join(md))
    print(f"bench: tables in {top}/results.md, data in {top}/results.json")


if __name__ == "__main__":
    main()
