#!/usr/bin/env python3
"""Draws vtpm_compare's measurements as SVG files with gnuplot (Debian's gnuplot-nox).

    bench/plot.py --samples bench-samples.csv --results bench-results.csv --out bench-plots

Reads the raw samples (vtpm_compare --samples) and the summary rows (--csv) and writes, for the
sections that ran:
  latency-<transport>.svg   per command, the latency distribution (cumulative, log time axis) of
                            vtpm and swtpm next to the floors: libtpms in process and the socket
                            ping-pong measured interleaved with the command (cross-CPU placement)
  latency-same-cpu.svg      the same for the cheap commands with client and daemons on one CPU
  device.svg                GetRandom(32) through the TIS registers, per backend
  clients.svg               real clients (tpm2-tools, ESYS) per TCTI, vtpm and swtpm
  startup-memory.svg        start-up times (with startup_floor) and memory per instance
Python standard library only; gnuplot does the drawing.
"""

import argparse
import collections
import csv
import os
import shutil
import subprocess
import sys
import tempfile

MAX_POINTS = 400  # per curve: quantiles of the sorted samples, so a file stays small
COLORS = {"vtpm": "#1f77b4", "swtpm": "#d62728", "libtpms": "#7f7f7f", "socket": "#2ca02c",
          "floor": "#7f7f7f", "vtpm fsync=false": "#9467bd", "in-process": "#7f7f7f",
          "vtpm socket": "#1f77b4", "swtpm socket": "#d62728"}


def read_samples(path):
    series = collections.OrderedDict()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["section"], row["command"], row["transport"], row["placement"],
                   row["subject"])
            series.setdefault(key, []).append(float(row["us"]))
    return series


def read_results(path):
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Plot:
    """One SVG: a grid of panels, each a set of cumulative-distribution curves or bars."""

    def __init__(self, work, name, title, panels, cols):
        self.work, self.name, self.title = work, name, title
        self.panels, self.cols = panels, cols
        self.files = 0

    def data_file(self, points):
        self.files += 1
        path = os.path.join(self.work, f"{self.name}-{self.files}.dat")
        with open(path, "w") as f:
            for x, y in points:
                f.write(f"{x:.6g} {y:.6g}\n")
        return path

    def cdf(self, samples):
        v = sorted(samples)
        n = len(v)
        if n <= MAX_POINTS:
            idx = range(n)
        else:
            idx = sorted({round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
        return [(v[i], (i + 1) / n) for i in idx]

    def script(self, out_svg):
        rows = (len(self.panels) + self.cols - 1) // self.cols
        width, height = 460 * self.cols, 420 * rows + 40
        lines = [
            f"set terminal svg size {width},{height} dynamic noenhanced font 'sans,11'",
            f"set output '{out_svg}'",
            f"set multiplot layout {rows},{self.cols} title '{esc(self.title)}'",
            "set grid", "set key below font ',9'",
        ]
        for panel in self.panels:
            lines += panel(self)
        lines.append("unset multiplot")
        return "\n".join(lines) + "\n"


def esc(s):
    return s.replace("'", "''")


def cdf_panel(title, curves, xlabel="µs per command (log scale)", ylabel="fraction of commands"):
    """curves: [(label, subject-for-color, dash, samples)]"""

    def draw(plot):
        parts = []
        for label, subject, dash, samples in curves:
            if not samples:
                continue
            path = plot.data_file(plot.cdf(samples))
            color = COLORS.get(subject, "#000000")
            parts.append(f"'{path}' using 1:2 with steps lw 2 dt {dash} lc rgb '{color}' "
                         f"title '{esc(label)}'")
        if not parts:
            return []
        return ["set logscale x", "set yrange [0:1]", f"set xlabel '{esc(xlabel)}'",
                f"set ylabel '{esc(ylabel)}'", f"set title '{esc(title)}'",
                "plot " + ", \\\n     ".join(parts)]

    return draw


def bar_panel(title, ylabel, groups, subjects):
    """groups: [(group label, {subject: value})] drawn as clustered bars."""

    def draw(plot):
        rows = []
        for i, (group, values) in enumerate(groups):
            rows.append((i, group, [values.get(s, 0.0) for s in subjects]))
        if not rows:
            return []
        path = os.path.join(plot.work, f"{plot.name}-bars-{len(title)}.dat")
        with open(path, "w") as f:
            for i, group, vals in rows:
                f.write(f"\"{group}\" " + " ".join(f"{v:.6g}" for v in vals) + "\n")
        parts = []
        for j, s in enumerate(subjects):
            parts.append(f"'{path}' using {j + 2}:xtic(1) title '{esc(s)}' "
                         f"lc rgb '{COLORS.get(s, '#000000')}'")
        return ["unset logscale x", "set autoscale y", "set yrange [0:*]", "set xlabel ''",
                f"set ylabel '{esc(ylabel)}'", f"set title '{esc(title)}'",
                "set style data histograms", "set style histogram clustered gap 1",
                "set style fill solid 0.8 border -1", "set boxwidth 0.9",
                "plot " + ", \\\n     ".join(parts), "set style data lines"]

    return draw


def latency_plots(series, placement, transports, only_cheap):
    cheap = ["GetRandom(32)", "PCR_Read", "PCR_Extend"]
    plots = []
    for transport in transports:
        commands = [k[1] for k in series
                    if k[0] == "command" and k[2] == transport and k[3] == placement
                    and k[4] == "vtpm"]
        if only_cheap:
            commands = [c for c in commands if c in cheap]
        panels = []
        for cmd in commands:
            curves = [
                ("vtpm", "vtpm", 1, series.get(("command", cmd, transport, placement, "vtpm"))),
                ("swtpm", "swtpm", 1, series.get(("command", cmd, transport, placement, "swtpm"))),
                ("floor: ping-pong (interleaved)", "socket", 2,
                 series.get(("floor", f"ping-pong 12/44 B, paired with {cmd}", transport,
                             placement, "socket"))),
            ]
            inproc = [v for k, v in series.items()
                      if k[0] == "floor" and k[1] == cmd and k[2] == "in-process"]
            if inproc:
                curves.append(("floor: libtpms in process", "libtpms", 3, inproc[0]))
            panels.append(cdf_panel(f"{cmd}, {transport}", curves))
        if panels:
            plots.append((transport, panels))
    return plots


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", required=True, help="vtpm_compare --samples FILE")
    ap.add_argument("--results", help="vtpm_compare --csv FILE (memory figures)")
    ap.add_argument("--out", required=True, help="directory for the SVG files")
    args = ap.parse_args()
    if shutil.which("gnuplot") is None:
        sys.exit("plot.py: gnuplot not found (apt-get install gnuplot-nox, or ./dev.sh setup)")
    if not os.path.exists(args.samples):
        sys.exit(f"plot.py: {args.samples} does not exist (vtpm_compare --samples FILE writes it)")
    series = read_samples(args.samples)
    results = read_results(args.results)
    placements = {k[3] for k in series}
    main_placement = "unpinned" if "unpinned" in placements else "cross-cpu"
    os.makedirs(args.out, exist_ok=True)
    for old in os.listdir(args.out):  # plots of an earlier run must not pass for this one's
        if old.endswith(".svg"):
            os.remove(os.path.join(args.out, old))
    work = tempfile.mkdtemp(prefix="vtpm-plot.")
    jobs = []  # (svg name, title, panels, columns)

    transports = ["unix", "tcp", "unix+mssim-prefix", "tcp+mssim-prefix"]
    for transport, panels in latency_plots(series, main_placement, transports, False):
        jobs.append((f"latency-{transport}.svg",
                     f"Round trip per command over {transport}, {main_placement}: vtpm vs swtpm "
                     "vs floors", panels, 4))
    same = [p for _, ps in latency_plots(series, "same-cpu", ["unix", "tcp"], True) for p in ps]
    if same:
        jobs.append(("latency-same-cpu.svg",
                     "Cheap commands with client and daemons on the same CPU: vtpm vs swtpm vs "
                     "floors", same, 3))

    dev = [(k[4], k[4], 1, v) for k, v in series.items() if k[0] == "device"]
    if dev:
        jobs.append(("device.svg", "TPM2_GetRandom(32) through the TIS registers, per backend",
                     [cdf_panel("GetRandom(32) via TIS", dev, "µs per command (log scale)")], 1))

    client_cmds = [c for c in dict.fromkeys(k[1] for k in series if k[0] == "clients")]
    if client_cmds:
        panels = []
        for cmd in client_cmds:
            curves = []
            for k, v in series.items():
                if k[0] != "clients" or k[1] != cmd:
                    continue
                dash = {"swtpm TCTI, UNIX": 1, "swtpm TCTI, TCP": 2, "mssim TCTI, TCP": 4}.get(
                    k[2], 1)
                curves.append((f"{k[4]}, {k[2]}", k[4], dash, v))
            xlabel = ("µs per command, process start included (log scale)"
                      if cmd.startswith("tpm2-tools") else "µs per command (log scale)")
            panels.append(cdf_panel(cmd, curves, xlabel))
        jobs.append(("clients.svg", "Real clients through tpm2-tss TCTIs", panels, 2))

    panels = []
    start = [(k[4], k[4], 1, [x / 1000 for x in v]) for k, v in series.items()
             if k[0] == "startup"]
    if start:
        panels.append(cdf_panel("Process start until TPM2_Startup is answered", start,
                                "ms (log scale)", "fraction of starts"))
    mem_rows = [r for r in results if r["section"] == "memory"]
    if mem_rows:
        subjects = list(dict.fromkeys(r["subject"] for r in mem_rows))
        groups = collections.OrderedDict()
        for r in mem_rows:  # "one idle instance" / "50 instances, per instance"
            what = "1 idle" if r["command"].startswith("one") else r["command"].split(" ")[0] + " up"
            groups.setdefault(f"{what}: RSS", {})[r["subject"]] = float(r["min"])
            groups.setdefault(f"{what}: PSS", {})[r["subject"]] = float(r["median"])
        panels.append(bar_panel("Memory per instance (N up: N instances at once)", "kB",
                                list(groups.items()), subjects))
    if panels:
        jobs.append(("startup-memory.svg", "Start-up and memory", panels, 2))

    for name, title, panels, cols in jobs:
        plot = Plot(work, name.replace(".svg", ""), title, panels, min(cols, len(panels)))
        svg = os.path.join(args.out, name)
        script = os.path.join(work, name + ".gp")
        with open(script, "w") as f:
            f.write(plot.script(svg))
        subprocess.run(["gnuplot", script], check=True)
        print(f"plot: {svg}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
