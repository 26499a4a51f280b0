"""Runs hdnet and its peers (PyTorch, TensorFlow) on the same workloads, interleaved, and prints
per-image times, images/s, GFLOP/s and peak memory, each as a ratio hdnet/peer.

Usage: bench/run.sh [--width 64] [--runs 3] [--rounds 2] [--train-batches 1 4]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd):
    """Runs a command; returns its JSON lines and its peak resident memory in MiB."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        # wait4 (not Popen.wait) also returns the child's resource usage: its peak RSS.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            print(f"  failed: {' '.join(cmd)}\n  {err.read().strip()[-400:]}", file=sys.stderr)
            return [], None
        rows = [json.loads(line) for line in out.read().splitlines() if line.startswith("{")]
        return rows, usage.ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--infer-batches", type=int, nargs="*", default=[1, 8])
    p.add_argument("--train-batches", type=int, nargs="*", default=[1])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--hdnet", default=os.path.join(ROOT, "target", "release", "hdnet"))
    args = p.parse_args()

    common = ["--width", str(args.width), "--size", str(args.size), "--runs", str(args.runs)]
    peers = os.path.join(HERE, "peers.py")
    tools = {
        "hdnet": lambda what, b: [args.hdnet, "bench", what, "--json", "--batch", str(b)] + common,
        "pytorch": lambda what, b: [args.python, peers, "torch", what, "--batch", str(b), "--threads", str(args.threads)] + common,
        "tensorflow": lambda what, b: [args.python, peers, "tf", what, "--batch", str(b), "--threads", str(args.threads)] + common,
    }
    workloads = [("infer", b) for b in args.infer_batches] + [("train", b) for b in args.train_batches]
    times = {}  # (what, net, batch, tool) -> [ms per image]
    memory = {}  # (what, batch, tool) -> [MiB]
    gflops = {}
    for rnd in range(args.rounds):
        for what, batch in workloads:
            for tool, cmd in tools.items():
                if tool == "tensorflow" and what == "train":
                    continue
                print(f"round {rnd + 1}/{args.rounds}: {tool} {what} batch {batch}", file=sys.stderr, flush=True)
                rows, mib = run(cmd(what, batch))
                for r in rows:
                    times.setdefault((what, r["what"], batch, tool), []).append(r["ms_per_image"])
                    gflops[(what, r["what"], batch, tool)] = r["gflop_per_image"]
                if rows:
                    memory.setdefault((what, batch, tool), []).append(mib)

    def cell(values):
        return statistics.median(values) if values else None

    def fmt(v, spec="{:.0f}"):
        return spec.format(v) if v is not None else "n/a"

    print(f"\nhdnet vs peers: width {args.width}, {args.size}x{args.size}, {args.threads} threads, "
          f"median of {args.runs} runs x {args.rounds} interleaved rounds (ms per image; ratio = hdnet/peer)\n")
    print(f"{'workload':<24}{'hdnet':>9}{'pytorch':>9}{'ratio':>7}{'tensorflow':>12}{'ratio':>7}{'hdnet GFLOP/s':>15}")
    for what, net, batch in sorted({k[:3] for k in times}, key=lambda k: (k[0], k[2], k[1])):
        h = cell(times.get((what, net, batch, "hdnet"), []))
        t = cell(times.get((what, net, batch, "pytorch"), []))
        f = cell(times.get((what, net, batch, "tensorflow"), []))
        g = gflops.get((what, net, batch, "hdnet"))
        ratio = lambda peer: fmt(h / peer, "{:.2f}") if h and peer else "n/a"
        gf = fmt(g / (h / 1e3), "{:.1f}") if g and h else "n/a"
        print(f"{what + ' ' + net + ' b' + str(batch):<24}{fmt(h):>9}{fmt(t):>9}{ratio(t):>7}{fmt(f):>12}{ratio(f):>7}{gf:>15}")
    print(f"\n{'peak memory (MiB)':<24}{'hdnet':>9}{'pytorch':>9}{'ratio':>7}{'tensorflow':>12}{'ratio':>7}")
    for what, batch in workloads:
        h, t, f = (cell(memory.get((what, batch, tool), [])) for tool in tools)
        ratio = lambda peer: fmt(h / peer, "{:.2f}") if h and peer else "n/a"
        print(f"{what + ' b' + str(batch):<24}{fmt(h):>9}{fmt(t):>9}{ratio(t):>7}{fmt(f):>12}{ratio(f):>7}")


if __name__ == "__main__":
    main()
