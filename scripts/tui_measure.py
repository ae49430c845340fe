#!/usr/bin/env python3
"""TUI measurements in a real terminal (tmux), recorded in docs/PERFORMANCE.md.

1. Idle CPU: `loom` open on a 16-bead repository, nothing happening, CPU time over 10 s.
2. Key-to-screen latency while 16 agents stream: a loopback server speaks the OpenAI
   streaming protocol and streams every reply slowly (a chunk each 20 ms per agent, for
   minutes); `S` starts all 16 agents; then keys switch between the board and the usage view
   and the time from `send-keys` until `capture-pane` shows the new view is measured.

With `--beads N --synth target/release/examples/synth_repo`, the repository also holds N
synthetic beads (JSONL) and the 16 agents work on its 16 most urgent ready ones.

Usage: scripts/tui_measure.py [path/to/loom] [--beads N --synth SYNTH_REPO_BIN]
(needs tmux and git)
"""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = sys.argv[1:]
BEADS, SYNTH = 0, None
if "--beads" in ARGS:
    i = ARGS.index("--beads"); BEADS = int(ARGS[i + 1]); del ARGS[i:i + 2]
if "--synth" in ARGS:
    i = ARGS.index("--synth"); SYNTH = os.path.abspath(ARGS[i + 1]); del ARGS[i:i + 2]
LOOM = os.path.abspath(ARGS[0] if ARGS else "target/release/loom")
SOCK = f"loom-measure-{os.getpid()}"


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = json.dumps({"data": [{"id": "slow-model", "context_length": 128000}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        try:
            for i in range(30000):
                chunk = {"id": "x", "object": "chat.completion.chunk", "model": "slow-model",
                         "choices": [{"index": 0, "delta": {"content": f"word{i} " + ("\n" if i % 12 == 11 else "")}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            return


def sh(*args, cwd=None, env=None):
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCK, *args], capture_output=True, text=True).stdout


def wait(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = tmux("capture-pane", "-p")
        if pred(s):
            return s
    raise SystemExit("timed out; screen:\n" + tmux("capture-pane", "-p"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="loom-tui-measure-")
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="m", GIT_AUTHOR_EMAIL="m@e",
               GIT_COMMITTER_NAME="m", GIT_COMMITTER_EMAIL="m@e", LOOM_CONFIG_DIR=os.path.join(work, "cfg"),
               LOOM_DATA_DIR=os.path.join(work, "data"), TERM="xterm-256color",
               TOKENHUB_URL=f"http://127.0.0.1:{server.server_port}/v1", TOKENHUB_API_KEY="k", LOOM_MODEL="slow-model")
    env.pop("NO_COLOR", None)
    if BEADS:
        os.rmdir(repo)
        sh(SYNTH, "--count", str(BEADS), "--format", "jsonl", "--out", repo, "--git", env=env)
    else:
        sh("git", "init", "-q", "-b", "main", cwd=repo, env=env)
        sh("git", "commit", "-q", "--allow-empty", "-m", "start", cwd=repo, env=env)
        sh(LOOM, "init", "--prefix", "m", cwd=repo, env=env)
    os.makedirs(os.path.join(repo, ".loom"), exist_ok=True)
    with open(os.path.join(repo, ".loom", "config.yaml"), "w") as f:
        f.write("max_agents: 16\ntest_command: 'true'\nreview: false\n")
    if not BEADS:
        for i in range(16):
            sh(LOOM, "create", f"Streaming bead {i}", "-q", cwd=repo, env=env)
    subprocess.run(["tmux", "-L", SOCK, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50",
                    "-c", repo, LOOM], env=env, check=True)
    try:
        wait((lambda s: re.search(r"Ready \d+", s) is not None) if BEADS else (lambda s: "Ready 16" in s), 60)
        pid = tmux("display-message", "-p", "#{pane_pid}").strip()  # loom itself
        time.sleep(8 if BEADS else 1)  # let start-up work (the background load) finish
        t = cpu_ticks(pid)
        time.sleep(10)
        idle = (cpu_ticks(pid) - t) / os.sysconf("SC_CLK_TCK")
        print(f"idle: {idle:.3f} s CPU over 10 s = {idle * 10:.2f} % of a core")
        tmux("send-keys", "S")
        wait(lambda s: "agents 16/16" in s, 300 if BEADS else 60)
        # On a large store the agents' start-up writes queue for a while: measure the streaming.
        time.sleep(90 if BEADS else 2)
        lat = []
        for i in range(200):
            key, marker = ("U", "Usage ·") if i % 2 == 0 else ("B", "In progress")
            t0 = time.perf_counter()
            tmux("send-keys", key)
            wait(lambda s: marker in s, 10)
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"key-to-screen with 16 agents streaming, {len(lat)} keys: median {statistics.median(lat):.1f} ms, "
              f"p99 {p99:.1f} ms, max {lat[-1]:.1f} ms")
        t = cpu_ticks(pid)
        time.sleep(5)
        busy = (cpu_ticks(pid) - t) / os.sysconf("SC_CLK_TCK")
        print(f"while 16 agents stream (no keys): {busy / 5 * 100:.1f} % of a core")
        base = []
        for i in range(50):
            t0 = time.perf_counter()
            tmux("capture-pane", "-p")
            base.append((time.perf_counter() - t0) * 1000)
        print(f"(one capture-pane costs {statistics.median(base):.1f} ms: the measurement's resolution)")
    finally:
        tmux("send-keys", "q")
        time.sleep(1)
        tmux("kill-server")
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
