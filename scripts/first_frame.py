#!/usr/bin/env python3
"""Time to the first board in a real terminal, recorded in docs/PERFORMANCE.md.

`loom` opens in a tmux pane (120x40) on a repository of 100,000 beads (JSONL); the time from
starting it until the pane shows the board (its column titles with counts, not "Loading") is
measured, several times, for each binary given — side by side in one run.

A LOOM_BIN written `path:cold` starts each of its runs with an empty data dir (no cached first
screen: what opening a store that changed since costs); otherwise the data dir is kept between
runs, as a user's is.

Usage: scripts/first_frame.py SYNTH_REPO_BIN LOOM_BIN[:cold] [LOOM_BIN ...] [--runs N] [--count N]
(needs tmux and git; SYNTH_REPO_BIN is target/release/examples/synth_repo)
"""
import os, re, shutil, statistics, subprocess, sys, tempfile, time

args = [a for a in sys.argv[1:]]
runs, count = 7, 100000
if "--runs" in args:
    i = args.index("--runs"); runs = int(args[i + 1]); del args[i:i + 2]
if "--count" in args:
    i = args.index("--count"); count = int(args[i + 1]); del args[i:i + 2]
synth, loms = os.path.abspath(args[0]), args[1:]
SOCK = f"loom-first-frame-{os.getpid()}"
BOARD = re.compile(r"Ready \d+ .*Blocked \d+")


def tmux(*a):
    return subprocess.run(["tmux", "-L", SOCK, *a], capture_output=True, text=True).stdout


def once(entry, repo, config):
    tmux("kill-server")
    loom, _, mode = entry.partition(":")
    loom = os.path.abspath(loom)
    data = os.path.join(os.path.dirname(config), "data-" + str(abs(hash(entry))))
    if mode == "cold":
        shutil.rmtree(data, ignore_errors=True)
    env = dict(os.environ, LOOM_CONFIG_DIR=config, LOOM_DATA_DIR=data, TERM="xterm-256color")
    start = time.monotonic()
    subprocess.run(["tmux", "-L", SOCK, "-f", "/dev/null", "new-session", "-d", "-x", "120",
                    "-y", "40", "-c", repo, f"{loom}; echo LOOM-DONE; sleep 60"], env=env,
                   check=True)
    while time.monotonic() - start < 60:
        screen = tmux("capture-pane", "-p")
        if BOARD.search(screen):
            took = time.monotonic() - start
            # Quit, and wait until it has exited: the next run must not share the machine.
            tmux("send-keys", "q")
            end = time.monotonic() + 30
            while "LOOM-DONE" not in tmux("capture-pane", "-p") and time.monotonic() < end:
                time.sleep(0.02)
            quit_took = time.monotonic() - start - took
            if os.environ.get("FIRST_FRAME_VERBOSE"):
                print(f"    {os.path.basename(loom)} {took:.3f} s (quit {quit_took:.2f} s)")
            tmux("kill-server")
            time.sleep(0.2)
            return took
        time.sleep(0.005)
    tmux("kill-server")
    raise SystemExit(f"{loom}: no board within 60 s")


def main():
    work = tempfile.mkdtemp(prefix="loom-first-frame-")
    try:
        repo, config = os.path.join(work, "repo"), os.path.join(work, "config")
        os.makedirs(config)
        env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="b",
                   GIT_AUTHOR_EMAIL="b@example.com", GIT_COMMITTER_NAME="b",
                   GIT_COMMITTER_EMAIL="b@example.com")
        subprocess.run([synth, "--count", str(count), "--format", "jsonl", "--out", repo, "--git"],
                       env=env, check=True, capture_output=True)
        for loom in loms:
            once(loom, repo, config)  # warm the page cache
        results = {loom: [] for loom in loms}
        for _ in range(runs):
            for loom in loms:  # interleaved, so both see the same machine
                results[loom].append(once(loom, repo, config))
        print(f"first board, {count} beads (JSONL), {runs} runs each, seconds:")
        for loom, t in results.items():
            print(f"  {loom}: median {statistics.median(t):.3f}  min {min(t):.3f}  max {max(t):.3f}")
    finally:
        tmux("kill-server")
        shutil.rmtree(work, ignore_errors=True)


main()
