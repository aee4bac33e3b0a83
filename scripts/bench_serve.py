#!/usr/bin/env python3
"""Serving benchmark: `qwen-run serve` vs llama.cpp's `llama-server`, concurrent streaming chat clients.

Usage (through the shell wrapper, which sets up the pinned venv):
    scripts/bench-serve [--runs 2] [--clients 1,4,8,16] [--requests 16] [--max-tokens 64]
                        [--decode-clients 1,8] [--decode-tokens 192]
                        [--servers ours,llama] [--json FILE] [--parallel 8] [--threads 2] [--ctx 8192]
                        [--prefill-chunk N] [--int8 never|accuracyLevel4|always] [--onnx FILE]
                        [--qwen-run .build/release/qwen-run] [--model Models/qwen2.5-coder-0.5b-instruct]
                        [--llama-server .llama.cpp/build/bin/llama-server]
                        [--gguf Models/gguf/qwen2.5-coder-0.5b-instruct-q4_0-pure.gguf]
                        [--prompt-cache] [--health-timeout 120] [--keep-logs]

It does not build: it runs the existing release qwen-run (build it with
`swift build -c release -Xswiftc -target-cpu -Xswiftc native --product qwen-run`, or `scripts/bench`)
and the llama-server of scripts/build_llama_cpp.sh. A side whose binary or model is missing is
skipped with a note saying how to make it.

The servers, one at a time (never both: on 2 cores they would take each other's CPU), on 127.0.0.1
and a free port:
  ours   qwen-run serve --model Models/qwen2.5-coder-0.5b-instruct --host 127.0.0.1 --port P --max-batch 8
         [--prefill-chunk N] [--int8 MODE] [--onnx FILE]
         (with --model Models/qwen2.5-coder-0.5b-instruct-genai-int4, onnxruntime-genai's builder graph of the
         same weights, whose accuracy_level 4 makes ours multiply int8 activations as llama.cpp's Q8_0 does)
  llama  llama-server -m Models/gguf/qwen2.5-coder-0.5b-instruct-q4_0-pure.gguf -np 8 -cb -c 8192 -t 2
                      --host 127.0.0.1 --port P
         (the same weights as pure Q4_0, 4.5 bits/weight like ours' MatMulNBits 4-bit block 32; 8 slots
         of 1024 context each, continuous batching, 2 threads; built without the web UI)
Each is ready when `GET /health` answers 200 (polled every 0.25 s, --health-timeout seconds at most),
then gets one untimed warm-up request, then for each concurrency level C (--clients) C concurrent
clients send max(C, --requests) streaming chat requests between them, each client taking the next
prompt of a fixed list of 16 distinct coding prompts in turn:
  POST /v1/chat/completions  {"model": ..., "messages": [{"role": "user", "content": PROMPT}],
                              "stream": true, "stream_options": {"include_usage": true},
                              "temperature": 0, "max_tokens": 64}
(model: the first id of the server's GET /v1/models, else the model directory's name; with
QWEN_API_KEY set, an `Authorization: Bearer` header goes with every request.)
The prompts repeat from level to level, so either server's prompt cache (llama-server's slots
keep the KV of earlier prompts, ours its PromptCache; both reuse the longest common prefix) would
skip most of their prefill from the second level on; so, unless --prompt-cache is given, the
requests to llama-server carry "cache_prompt": false and ours runs with --prompt-cache-mb 0. The client is a single asyncio process with httpx2's streaming
(the HTTP client openai==3.63.0 uses), one connection per client, reading SSE `data:` lines
until `data: [DONE]`; its own CPU time is reported (it shares the 2 cores with the server).

Measured per request:
  TTFT  time from sending the request to the first chunk whose delta has non-empty content
  ITL   the gaps between consecutive content chunks of a request
  completion tokens  usage.completion_tokens of the final usage chunk, else the number of content chunks
Per level: aggregate tok/s = completion tokens of all the level's requests / wall time from the
first request sent to the last stream finished; p50/p99 of the TTFTs and of all the ITLs pooled
(linear interpolation); errors = requests with an HTTP error, an error event, no content or no
[DONE]. Errored requests count no tokens.

Decode rate at C concurrent streams (the second table; for each C of --decode-clients, default 1,8,
each at most --parallel; an empty list skips it, as an empty --clients skips the levels above). On
the same server instance, right after its levels, C streaming requests start together (one per
client and connection, prompts 1..C of the list), the same body as above but with max_tokens
--decode-tokens (192) and "ignore_eos": true (do not stop at the end-of-sequence token; llama-server
supports it, a server that ignores it may end a stream early, which only ends the window earlier).
The arrival time of every content chunk of every stream is recorded (1 chunk = 1 token, as for ITL;
usage.completion_tokens only says whether a stream stopped short).
  window    from the moment the last of the C streams receives its first content chunk (all of them
            are then past prefill) to the moment the first stream to finish receives its last one
  decode tok/s  content chunks of all streams arriving strictly after the start and at or before the
            end / window length: the aggregate decode rate with prefill excluded. At C = 1 it is the
            single-stream decode rate: tokens after the first / time from the first to the last.
  ITL p50/p99  of the gaps between consecutive chunks of a stream with both ends in [start, end]
A run with a failed stream, or whose window is empty (a stream ended before the last one started)
or shorter than 1 s, is invalid: it is reported as such, with the reason, and left out of the
medians. The line under the table gives, per server, (median decode tok/s at the largest C) /
(median decode tok/s at C = 1), when 1 and a larger C were both run.

Rounds (--runs): ours, then llama, in every round (ours, llama, ours, llama, ...), each server
started afresh per round and stopped after its levels and decode runs. The tables give medians over
the rounds and the paired ratio ours / llama of aggregate tok/s per level, and of decode tok/s per C
(each round's two figures are a minute or two apart, so each ratio sees about the same machine; the
median of the rounds' ratios, with their range). The CPU time other processes take during each level
and decode run is measured (/proc/stat minus the server's and the client's) and a busy machine is
flagged. Servers are stopped (SIGTERM, then
SIGKILL) on every exit, Ctrl-C included (and get SIGTERM from the kernel if this script is killed
outright: PR_SET_PDEATHSIG). --json FILE writes every figure, per request (and for the decode runs
every chunk's arrival time, in seconds from the start of the run).

What a server must do for this script: answer `GET /health` with 200 once it can serve (anything
else, or a refused connection, while loading), list its model in `GET /v1/models` (or accept the
model directory's name), and stream `POST /v1/chat/completions` as OpenAI does
(`data: {json}` lines of chat.completion.chunk objects with choices[0].delta.content, a final chunk
with "usage" when stream_options.include_usage is true, then `data: [DONE]`), with up to --parallel
requests in flight at once (more are queued by the server, or wait in its accept backlog).
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import http.client
import json
import math
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import busy_cpu_seconds, cpu_model  # scripts/bench.py: the same /proc readings

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

# Sixteen distinct coding requests, each of which makes the model write well over 64 tokens.
PROMPTS = [
    "Write a Python function that parses an ISO 8601 date string without using datetime.fromisoformat, with comments.",
    "Implement a thread-safe LRU cache class in Java with get and put methods, and explain the design.",
    "Write a Swift struct for a fixed-capacity ring buffer that conforms to Sequence, with doc comments.",
    "Show how to reverse a singly linked list in C, iteratively and recursively, and compare the two.",
    "Write a Rust function that counts word frequencies in a text file and prints the ten most common words.",
    "Implement binary search over a sorted array in Go, returning the insertion point when the key is absent.",
    "Write a SQL query that finds, for every department, the three highest-paid employees, and explain it.",
    "Write a bash script that backs up a directory into a dated tar.gz archive and deletes backups older than a week.",
    "Implement Dijkstra's shortest-path algorithm in Python with heapq, for a graph given as an adjacency dict.",
    "Write a TypeScript debounce function with proper generic types, and show how to use it in a search box.",
    "Explain and implement quicksort in C++ with a median-of-three pivot, using iterators.",
    "Write a Kotlin data class for a bank account with deposit and withdraw methods that reject invalid amounts.",
    "Write a Python asyncio program that downloads a list of URLs with at most five requests at a time.",
    "Implement a trie in JavaScript with insert, search and startsWith, and give a short usage example.",
    "Write a Haskell function that computes the Fibonacci numbers lazily, and explain how laziness helps.",
    "Write unit tests in pytest for a function that validates email addresses, covering the edge cases.",
]
WARMUP_PROMPT = "Write a Python function that returns the n-th prime number, with a short explanation."


def log(msg: str) -> None:
    print(f"[bench-serve {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD"]).returncode != 0
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of values, linear interpolation between the closest ranks."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median_of(values: list) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# Server processes

LIVE: list[subprocess.Popen] = []


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc in LIVE:
        LIVE.remove(proc)


def stop_all() -> None:
    for proc in list(LIVE):
        stop(proc)


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when this script dies, even by SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def health(port: int) -> int | None:
    """The status of GET /health, or None when nothing answers."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        conn.request("GET", "/health")
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def auth_headers() -> dict:
    """An Authorization header when QWEN_API_KEY is set (qwen-run serve then requires it on /v1 routes)."""
    key = os.environ.get("QWEN_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def served_model_id(port: int) -> str | None:
    """The first model id of GET /v1/models (the name the server wants in requests), or None."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        conn.request("GET", "/v1/models", headers=auth_headers())
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200:
            return None
        return json.loads(body)["data"][0]["id"]
    except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError, TypeError):
        return None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_server(name: str, cmd: list[str], port: int, logdir: Path, round_: int, timeout: float):
    """Starts cmd (its own session, output to a log file) and waits for GET /health == 200."""
    logfile = logdir / f"{name}-round{round_}.log"
    log(f"starting {name}: {shlex.join(cmd)}")
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT, preexec_fn=die_with_parent)
    LIVE.append(proc)
    t0 = time.perf_counter()
    last = None
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode} before it was ready; the end of {logfile}:\n"
                             + tail(logfile))
        last = health(port)
        if last == 200:
            ready_s = time.perf_counter() - t0
            log(f"{name} ready in {ready_s:.1f} s (GET /health 200), pid {proc.pid}")
            return proc, logfile, ready_s
        time.sleep(0.25)
    stop(proc)
    raise SystemExit(f"{name} not ready after {timeout:.0f} s (last GET /health: {last or 'no answer'}); "
                     f"the end of {logfile}:\n" + tail(logfile))


# ---------------------------------------------------------------------------------------------
# Streaming clients

async def one_request(client, body: dict, times: bool = False) -> dict:
    """One streaming chat completion; its TTFT, inter-token gaps and completion tokens (and with times,
    the time.perf_counter() at which each content chunk arrived, in "chunk_times")."""
    import httpx2

    r = {"ttft_s": None, "itl_s": [], "content_chunks": 0, "completion_tokens": 0, "usage_tokens": None,
         "total_s": None, "error": None}
    if times:
        r["chunk_times"] = []
    t0 = time.perf_counter()
    last = None
    done = False
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode("utf-8", "replace")
                r["error"] = f"HTTP {resp.status_code}: {text[:300]}"
                return r
            async for line in resp.aiter_lines():
                now = time.perf_counter()
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event: lines
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                event = json.loads(data)
                if event.get("error"):
                    r["error"] = f"error event: {json.dumps(event['error'])[:300]}"
                    break
                if event.get("usage"):
                    r["usage_tokens"] = event["usage"].get("completion_tokens")
                for choice in event.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        if last is None:
                            r["ttft_s"] = now - t0
                        else:
                            r["itl_s"].append(now - last)
                        last = now
                        r["content_chunks"] += 1
                        if times:
                            r["chunk_times"].append(now)
    except (httpx2.HTTPError, OSError, ValueError) as e:
        r["error"] = f"{type(e).__name__}: {e}"[:300]
    r["total_s"] = time.perf_counter() - t0
    if r["error"] is None and not done:
        r["error"] = "stream ended without data: [DONE]"
    if r["error"] is None and r["content_chunks"] == 0:
        r["error"] = "no content"
    if r["error"] is None:
        r["completion_tokens"] = r["usage_tokens"] if r["usage_tokens"] is not None else r["content_chunks"]
    return r


def request_body(prompt: str, args, server: str, model_id: str, max_tokens: int | None = None) -> dict:
    body = {"model": model_id, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "stream_options": {"include_usage": True}, "temperature": 0,
            "max_tokens": max_tokens if max_tokens is not None else args.max_tokens}
    if server == "llama" and not args.prompt_cache:
        body["cache_prompt"] = False
    return body


async def run_level(port: int, clients: int, total: int, args, server: str, model_id: str) -> tuple[list[dict], float]:
    """`clients` concurrent clients sending `total` requests between them (prompts in turn)."""
    import httpx2

    timeout = httpx2.Timeout(connect=10.0, read=600.0, write=30.0, pool=600.0)
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    results: list[dict | None] = [None] * total
    next_index = 0

    async with httpx2.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=timeout, limits=limits,
                                  headers=auth_headers(), trust_env=False) as client:
        async def worker():
            nonlocal next_index
            while next_index < total:
                i = next_index
                next_index += 1
                r = await one_request(client, request_body(PROMPTS[i % len(PROMPTS)], args, server, model_id))
                r["prompt"] = i % len(PROMPTS)
                results[i] = r

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return results, wall


def level_figures(results: list[dict], wall: float) -> dict:
    ok = [r for r in results if r["error"] is None]
    tokens = sum(r["completion_tokens"] for r in ok)
    ttft = [r["ttft_s"] for r in ok]
    itl = [g for r in ok for g in r["itl_s"]]
    ms = lambda v: v * 1e3 if v is not None else None  # noqa: E731
    return {"requests": len(results), "errors": len(results) - len(ok), "completion_tokens": tokens,
            "wall_s": wall, "agg_tokens_per_s": tokens / wall if wall > 0 else None,
            "ttft_p50_ms": ms(percentile(ttft, 0.5)), "ttft_p99_ms": ms(percentile(ttft, 0.99)),
            "itl_p50_ms": ms(percentile(itl, 0.5)), "itl_p99_ms": ms(percentile(itl, 0.99)),
            "usage_chunks": sum(r["usage_tokens"] is not None for r in ok),
            "first_errors": [r["error"] for r in results if r["error"]][:3]}


async def run_decode(port: int, streams: int, args, server: str, model_id: str) -> tuple[list[dict], float]:
    """`streams` streaming requests started together (prompts 0..streams-1), each max_tokens --decode-tokens
    with ignore_eos; the arrival time of every content chunk. Returns the results and the start time."""
    import httpx2

    timeout = httpx2.Timeout(connect=10.0, read=600.0, write=30.0, pool=600.0)
    limits = httpx2.Limits(max_connections=streams, max_keepalive_connections=streams)
    bodies = [request_body(PROMPTS[i], args, server, model_id, args.decode_tokens) | {"ignore_eos": True}
              for i in range(streams)]
    async with httpx2.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=timeout, limits=limits,
                                  headers=auth_headers(), trust_env=False) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_request(client, body, times=True) for body in bodies))
    for i, r in enumerate(results):
        r["prompt"] = i
    return list(results), t0


def decode_figures(results: list[dict], t0: float, decode_tokens: int) -> dict:
    """The decode window of one run: from the last stream's first content chunk to the first stream's last one.

    Rate = content chunks of all streams arriving strictly after the start and at or before the end, per
    second of the window; ITL = the gaps between consecutive chunks of a stream with both ends in
    [start, end]. Invalid (no rate) when a stream failed, or the window is empty or shorter than 1 s."""
    ms = lambda v: v * 1e3 if v is not None else None  # noqa: E731
    errors = [f"stream {r['prompt']}: {r['error']}" for r in results if r["error"]]
    tokens_per_stream = [r["completion_tokens"] if r["error"] is None else r["content_chunks"] for r in results]
    fig = {"streams": len(results), "errors": len(errors), "first_errors": errors[:3], "valid": False,
           "invalid_reason": None, "decode_tokens_per_s": None, "window_start_s": None, "window_end_s": None,
           "window_s": None, "window_tokens": None, "itl_gaps": 0, "itl_p50_ms": None, "itl_p99_ms": None,
           "stream_tokens": tokens_per_stream,
           "streams_short": sum(1 for n in tokens_per_stream if n < decode_tokens),
           "first_to_finish": None,
           "per_stream": [{k: v for k, v in r.items() if k not in ("chunk_times", "itl_s")}
                          | {"chunk_times_s": [round(t - t0, 6) for t in r["chunk_times"]]} for r in results]}
    if errors:
        fig["invalid_reason"] = f"{len(errors)} stream(s) failed ({errors[0]})"
        return fig
    start = max(r["chunk_times"][0] for r in results)
    finisher = min(results, key=lambda r: r["chunk_times"][-1])
    end = finisher["chunk_times"][-1]
    window = end - start
    tokens = sum(1 for r in results for t in r["chunk_times"] if start < t <= end)
    gaps = [b - a for r in results for a, b in zip(r["chunk_times"], r["chunk_times"][1:]) if start <= a and b <= end]
    fig |= {"window_start_s": start - t0, "window_end_s": end - t0, "window_s": window, "window_tokens": tokens,
            "itl_gaps": len(gaps), "itl_p50_ms": ms(percentile(gaps, 0.5)), "itl_p99_ms": ms(percentile(gaps, 0.99)),
            "first_to_finish": {"stream": finisher["prompt"], "content_chunks": finisher["content_chunks"],
                                "completion_tokens": finisher["completion_tokens"]}}
    if window <= 0:
        fig["invalid_reason"] = (f"empty window: stream {finisher['prompt']} finished at {end - t0:.2f} s, before the "
                                 f"last first token at {start - t0:.2f} s")
    elif window < 1.0:
        fig["invalid_reason"] = f"window {window:.2f} s < 1 s"
    elif tokens == 0:
        fig["invalid_reason"] = "no token inside the window"
    else:
        fig["valid"] = True
        fig["decode_tokens_per_s"] = tokens / window
    return fig


def bench_server(name: str, cmd: list[str], port: int, args, levels: list[int], decode_levels: list[int],
                 logdir: Path, round_: int) -> dict:
    proc, logfile, ready_s = start_server(name, cmd, port, logdir, round_, args.health_timeout)
    try:
        model_id = served_model_id(port) or args.model.name
        warm = asyncio.run(warm_up(port, args, name, model_id))
        if warm["error"]:
            raise SystemExit(f"{name}: the warm-up request failed: {warm['error']}\nthe end of {logfile}:\n" + tail(logfile))
        log(f"{name} warm-up: {warm['completion_tokens']} tokens in {warm['total_s']:.2f} s "
            f"(TTFT {warm['ttft_s'] * 1e3:.0f} ms)")
        out = {"server": name, "round": round_, "command": cmd, "model_id": model_id, "ready_s": ready_s,
               "warmup": warm, "levels": [], "decode": []}
        ncpu = os.cpu_count() or 1
        for clients in levels:
            total = max(clients, args.requests)
            busy0, server0, own0 = busy_cpu_seconds(), process_cpu_seconds(proc.pid), own_cpu_seconds()
            results, wall = asyncio.run(run_level(port, clients, total, args, name, model_id))
            busy = busy_cpu_seconds() - busy0
            server_cpu = process_cpu_seconds(proc.pid) - server0
            client_cpu = own_cpu_seconds() - own0
            fig = level_figures(results, wall)
            fig |= {"clients": clients, "server_cpu_cores": server_cpu / wall, "client_cpu_cores": client_cpu / wall,
                    "others_cpu_fraction": max(0.0, busy - server_cpu - client_cpu) / (wall * ncpu),
                    "per_request": results}
            out["levels"].append(fig)
            log(f"round {round_} {name:5s} C={clients:<2d} {total} req: {fmt(fig['agg_tokens_per_s'], '{:.1f}')} tok/s, "
                f"TTFT p50/p99 {fmt(fig['ttft_p50_ms'], '{:.0f}')}/{fmt(fig['ttft_p99_ms'], '{:.0f}')} ms, "
                f"ITL p50/p99 {fmt(fig['itl_p50_ms'], '{:.1f}')}/{fmt(fig['itl_p99_ms'], '{:.1f}')} ms, "
                f"{fig['completion_tokens']} tokens in {wall:.1f} s, errors {fig['errors']}"
                + (f" ({fig['first_errors'][0]})" if fig["errors"] else "")
                + f"; CPU: server {fig['server_cpu_cores']:.2f} cores, client {fig['client_cpu_cores']:.2f}, "
                f"other processes {fig['others_cpu_fraction']:.0%} of the machine")
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode} during the run; the end of {logfile}:\n"
                                 + tail(logfile))
        # The decode-rate runs, on the same server instance, after the throughput levels.
        for streams in decode_levels:
            busy0, server0, own0 = busy_cpu_seconds(), process_cpu_seconds(proc.pid), own_cpu_seconds()
            results, t0 = asyncio.run(run_decode(port, streams, args, name, model_id))
            wall = time.perf_counter() - t0
            busy = busy_cpu_seconds() - busy0
            server_cpu = process_cpu_seconds(proc.pid) - server0
            client_cpu = own_cpu_seconds() - own0
            fig = decode_figures(results, t0, args.decode_tokens)
            fig |= {"wall_s": wall, "server_cpu_cores": server_cpu / wall, "client_cpu_cores": client_cpu / wall,
                    "others_cpu_fraction": max(0.0, busy - server_cpu - client_cpu) / (wall * ncpu)}
            out["decode"].append(fig)
            ff = fig["first_to_finish"]
            head = f"round {round_} {name:5s} decode C={streams:<2d}: "
            if fig["valid"]:
                head += (f"{fig['decode_tokens_per_s']:.1f} tok/s, {fig['window_tokens']} tokens in "
                         f"{fig['window_s']:.2f} s ({fig['window_start_s']:.2f}-{fig['window_end_s']:.2f} s), ")
            else:
                head += f"INVALID ({fig['invalid_reason']}), "
            log(head + f"ITL p50/p99 {fmt(fig['itl_p50_ms'], '{:.1f}')}/{fmt(fig['itl_p99_ms'], '{:.1f}')} ms; "
                f"stream tokens {min(fig['stream_tokens'])}-{max(fig['stream_tokens'])} "
                f"({fig['streams_short']} of {streams} short of {args.decode_tokens})"
                + (f", first to finish: stream {ff['stream']} after {ff['content_chunks']} chunks" if ff else "")
                + f"; CPU: server {fig['server_cpu_cores']:.2f} cores, client {fig['client_cpu_cores']:.2f}, "
                f"other processes {fig['others_cpu_fraction']:.0%} of the machine")
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode} during the run; the end of {logfile}:\n"
                                 + tail(logfile))
        return out
    finally:
        stop(proc)


async def warm_up(port: int, args, server: str, model_id: str) -> dict:
    import httpx2

    async with httpx2.AsyncClient(base_url=f"http://{HOST}:{port}", headers=auth_headers(), trust_env=False,
                                  timeout=httpx2.Timeout(connect=10.0, read=600.0, write=30.0, pool=600.0)) as client:
        return await one_request(client, request_body(WARMUP_PROMPT, args, server, model_id))


def paired_ratio(ours: list[dict], llama: list[dict], metric: str, usable) -> dict | None:
    """Round by round, ours / llama of `metric` over the rounds where `usable(ours_round, llama_round)`:
    the median, the range and the values; None without a usable round."""
    values = sorted(a[metric] / b[metric] for a, b in zip(ours, llama) if usable(a, b))
    if not values:
        return None
    return {"median": statistics.median(values), "min": values[0], "max": values[-1], "rounds": values}


def fmt(v, f: str) -> str:
    return f.format(v) if v is not None else "-"


# ---------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="ours,llama", help="which sides to run: ours, llama or both")
    ap.add_argument("--clients", default="1,4,8,16", help="concurrency levels (empty: skip the throughput levels)")
    ap.add_argument("--decode-clients", default="1,8",
                    help="streams of the decode-rate runs (empty: skip them); at most --parallel")
    ap.add_argument("--decode-tokens", type=int, default=192, help="max_tokens of each decode-rate stream")
    ap.add_argument("--requests", type=int, default=16, help="requests per level (at least the level's clients)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=2, help="rounds (each: ours, then llama)")
    ap.add_argument("--parallel", type=int, default=8, help="requests served at once: ours --max-batch, llama -np")
    ap.add_argument("--threads", type=int, default=2, help="llama-server -t")
    ap.add_argument("--prefill-chunk", type=int, help="ours --prefill-chunk (default: the server's own)")
    ap.add_argument("--onnx", metavar="FILE",
                    help="ours --onnx: another file of the model's onnx/ folder (model_quantized.onnx: the q8 export)")
    ap.add_argument("--int8", choices=["never", "accuracyLevel4", "always"],
                    help="ours --int8: where MatMulNBits multiplies int8 activations (default: the server's own)")
    ap.add_argument("--ctx", type=int, default=8192, help="llama-server -c (split between its -np slots)")
    ap.add_argument("--model", type=Path, default=ROOT / "Models/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--qwen-run", type=Path, default=ROOT / ".build/release/qwen-run")
    ap.add_argument("--llama-server", type=Path, default=ROOT / ".llama.cpp/build/bin/llama-server")
    ap.add_argument("--gguf", type=Path, default=ROOT / "Models/gguf/qwen2.5-coder-0.5b-instruct-q4_0-pure.gguf")
    ap.add_argument("--prompt-cache", "--llama-prompt-cache", dest="prompt_cache", action="store_true",
                    help="leave both servers' prompt caches on (default: llama-server's requests say cache_prompt"
                         " false, ours runs with --prompt-cache-mb 0)")
    ap.add_argument("--health-timeout", type=float, default=120.0, help="seconds to wait for GET /health 200")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every figure (per request too) to FILE")
    ap.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (their directory is printed)")
    args = ap.parse_args()

    try:
        levels = [int(c) for c in args.clients.split(",") if c.strip()]
        decode_levels = [int(c) for c in args.decode_clients.split(",") if c.strip()]
    except ValueError:
        raise SystemExit("--clients, --decode-clients: comma-separated lists of positive integers")
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.runs < 1 or args.requests < 1 or args.max_tokens < 1 or args.decode_tokens < 2:
        raise SystemExit("--runs, --requests and --max-tokens must be at least 1, --decode-tokens at least 2")
    if any(c < 1 for c in levels + decode_levels):
        raise SystemExit("--clients, --decode-clients: comma-separated lists of positive integers")
    if not levels and not decode_levels:
        raise SystemExit("nothing to measure: --clients and --decode-clients are both empty")
    if len(set(decode_levels)) != len(decode_levels):
        raise SystemExit("--decode-clients: a level is given twice")
    if too_many := [c for c in decode_levels if c > min(args.parallel, len(PROMPTS))]:
        raise SystemExit(f"--decode-clients {too_many}: at most --parallel ({args.parallel}) and {len(PROMPTS)} streams "
                         f"(more than the server runs at once would wait in its queue: no window with all of them "
                         f"decoding)")
    if unknown := [s for s in wanted if s not in ("ours", "llama")]:
        raise SystemExit(f"--servers: unknown {', '.join(unknown)} (ours, llama)")

    notes: list[str] = []
    servers = []
    if "ours" in wanted:
        if not args.qwen_run.is_file():
            msg = (f"ours skipped: no {args.qwen_run}; build it with `swift build -c release -Xswiftc -target-cpu "
                   f"-Xswiftc native --product qwen-run` (or give --qwen-run PATH)")
            log(msg)
            notes.append(msg)
        elif not args.model.is_dir():
            msg = f"ours skipped: no model at {args.model} (scripts/build_default_model.sh makes it)"
            log(msg)
            notes.append(msg)
        else:
            servers.append("ours")
    if "llama" in wanted:
        if not args.llama_server.is_file():
            msg = (f"llama skipped: no {args.llama_server}; build it with scripts/build_llama_cpp.sh "
                   f"(or give --llama-server PATH)")
            log(msg)
            notes.append(msg)
        elif not args.gguf.is_file():
            src = ROOT / "Models/gguf/qwen2.5-coder-0.5b-instruct.gguf"
            msg = (f"llama skipped: no {args.gguf}; fetch the GGUF with scripts/fetch_gguf.sh (see README), then make the "
                   f"pure Q4_0 file with `{args.llama_server.with_name('llama-quantize')} --allow-requantize --pure "
                   f"{src} {args.gguf} Q4_0` (scripts/bench with LLAMA_CPP_BIN set does the same), or give --gguf PATH")
            log(msg)
            notes.append(msg)
        else:
            servers.append("llama")
    if not servers:
        raise SystemExit("no server to run")

    def command(name: str, port: int) -> list[str]:
        if name == "ours":
            return [str(args.qwen_run), "serve", "--model", str(args.model), "--host", HOST, "--port", str(port),
                    "--max-batch", str(args.parallel),
                    *(["--prefill-chunk", str(args.prefill_chunk)] if args.prefill_chunk is not None else []),
                    *(["--int8", args.int8] if args.int8 else []),
                    *(["--onnx", args.onnx] if args.onnx else []),
                    *([] if args.prompt_cache else ["--prompt-cache-mb", "0"])]
        return [str(args.llama_server), "-m", str(args.gguf), "-np", str(args.parallel), "-cb", "-c", str(args.ctx),
                "-t", str(args.threads), "--host", HOST, "--port", str(port)]

    llama_version = None
    if "llama" in servers:
        v = subprocess.run([str(args.llama_server), "--version"], capture_output=True, text=True)
        llama_version = " ".join(line.strip() for line in (v.stdout + v.stderr).splitlines() if line.strip())
        isa = args.llama_server.parent.parent / "isa.txt"
        if isa.is_file():
            llama_version += f"; built for {isa.read_text().strip()}"

    cpu, commit = cpu_model(), git_commit()
    log(f"CPU: {cpu} ({os.cpu_count()} CPUs); commit {commit}")
    log(f"servers {', '.join(servers)}; clients {levels}; max(C, {args.requests}) requests per level; "
        f"{args.max_tokens} new tokens; decode-rate streams {decode_levels}, {args.decode_tokens} tokens each; "
        f"{args.runs} round(s)")

    logdir = Path(tempfile.mkdtemp(prefix="bench-serve-logs-"))
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    rounds: list[dict] = []
    failed = False
    try:
        for round_ in range(1, args.runs + 1):
            for name in servers:
                port = free_port()
                rounds.append(bench_server(name, command(name, port), port, args, levels, decode_levels, logdir,
                                           round_))
    except (KeyboardInterrupt, SystemExit):
        failed = True
        raise
    finally:
        stop_all()
        if args.keep_logs or failed:
            log(f"server logs kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)

    # Medians over rounds, per level and server; paired ratios ours / llama per round.
    keys = ("agg_tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms")
    summary: dict[str, dict[str, dict]] = {}
    ratios: dict[str, dict] = {}
    for li, clients in enumerate(levels):
        summary[str(clients)] = {}
        for name in servers:
            figs = [r["levels"][li] for r in rounds if r["server"] == name]
            summary[str(clients)][name] = {k: median_of([f[k] for f in figs]) for k in keys} | {
                "errors": sum(f["errors"] for f in figs), "requests": sum(f["requests"] for f in figs),
                "completion_tokens_median": median_of([f["completion_tokens"] for f in figs]),
                "others_cpu_fraction_max": max(f["others_cpu_fraction"] for f in figs),
                "client_cpu_cores_max": max(f["client_cpu_cores"] for f in figs)}
        if "ours" in servers and "llama" in servers:
            ours = [r["levels"][li] for r in rounds if r["server"] == "ours"]
            llama = [r["levels"][li] for r in rounds if r["server"] == "llama"]
            ratio = paired_ratio(ours, llama, "agg_tokens_per_s", lambda a, b: a["agg_tokens_per_s"] and b["agg_tokens_per_s"])
            if ratio:
                ratios[str(clients)] = ratio

    # Decode-rate runs: medians over the rounds whose window is valid; paired ratios ours / llama per round.
    dkeys = ("decode_tokens_per_s", "window_s", "window_tokens", "itl_p50_ms", "itl_p99_ms")
    decode_summary: dict[str, dict[str, dict]] = {}
    decode_ratios: dict[str, dict] = {}
    for di, streams in enumerate(decode_levels):
        decode_summary[str(streams)] = {}
        for name in servers:
            figs = [r["decode"][di] for r in rounds if r["server"] == name]
            valid = [f for f in figs if f["valid"]]
            decode_summary[str(streams)][name] = {k: median_of([f[k] for f in valid]) for k in dkeys} | {
                "valid_rounds": len(valid), "rounds": len(figs),
                "invalid_reasons": [f["invalid_reason"] for f in figs if not f["valid"]],
                # the medians of the invalid rounds' window, to show how short it was
                "invalid_window_s": median_of([f["window_s"] for f in figs if not f["valid"]]),
                "invalid_window_tokens": median_of([f["window_tokens"] for f in figs if not f["valid"]]),
                "errors": sum(f["errors"] for f in figs),
                "streams_short": sum(f["streams_short"] for f in figs), "streams_total": streams * len(figs),
                "others_cpu_fraction_max": max(f["others_cpu_fraction"] for f in figs),
                "client_cpu_cores_max": max(f["client_cpu_cores"] for f in figs)}
        if "ours" in servers and "llama" in servers:
            ours = [r["decode"][di] for r in rounds if r["server"] == "ours"]
            llama = [r["decode"][di] for r in rounds if r["server"] == "llama"]
            ratio = paired_ratio(ours, llama, "decode_tokens_per_s", lambda a, b: a["valid"] and b["valid"])
            if ratio:
                decode_ratios[str(streams)] = ratio
    # (median rate at the largest level) / (median rate at 1 stream), per server
    x_single: dict[str, float | None] = {}
    top = max(decode_levels) if decode_levels else None
    if top is not None and top > 1 and 1 in decode_levels:
        for name in servers:
            one = decode_summary["1"][name]["decode_tokens_per_s"]
            many = decode_summary[str(top)][name]["decode_tokens_per_s"]
            x_single[name] = many / one if one and many else None

    names = {"ours": "qwen-run serve", "llama": "llama-server"}
    lines = []
    if levels:
        lines += ["| clients | server | agg tok/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | errors | ours / llama agg tok/s |",
                  "|---|---|---|---|---|---|---|"]
    for clients in levels:
        for name in servers:
            s = summary[str(clients)][name]
            ratio = "-"
            if name == "ours" and str(clients) in ratios:
                rr = ratios[str(clients)]
                ratio = f"**{rr['median']:.2f}×**" + (f" ({rr['min']:.2f}–{rr['max']:.2f})" if len(rr["rounds"]) > 1 else "")
            lines.append(f"| {clients} | {names[name]} | {fmt(s['agg_tokens_per_s'], '{:.1f}')} | "
                         f"{fmt(s['ttft_p50_ms'], '{:.0f}')} / {fmt(s['ttft_p99_ms'], '{:.0f}')} | "
                         f"{fmt(s['itl_p50_ms'], '{:.1f}')} / {fmt(s['itl_p99_ms'], '{:.1f}')} | "
                         f"{s['errors']}/{s['requests']} | {ratio} |")
    if decode_levels:
        if lines:
            lines.append("")
        lines += ["| streams | server | decode tok/s (all past first token) | window s / tokens | ITL p50 / p99 ms "
                  "| ours / llama |", "|---|---|---|---|---|---|"]
    for streams in decode_levels:
        for name in servers:
            s = decode_summary[str(streams)][name]
            ratio = "-"
            if name == "ours" and str(streams) in decode_ratios:
                rr = decode_ratios[str(streams)]
                ratio = f"**{rr['median']:.2f}×**" + (f" ({rr['min']:.2f}–{rr['max']:.2f})" if len(rr["rounds"]) > 1 else "")
            if s["valid_rounds"]:
                rate = f"{s['decode_tokens_per_s']:.1f}" + (
                    f" ({s['valid_rounds']}/{s['rounds']} rounds valid)" if s["valid_rounds"] < s["rounds"] else "")
                window = f"{s['window_s']:.2f} / {s['window_tokens']:.0f}"
            else:
                rate = f"invalid: {s['invalid_reasons'][0]}" + (f" (all {s['rounds']} rounds)" if s["rounds"] > 1 else "")
                window = f"{fmt(s['invalid_window_s'], '{:.2f}')} / {fmt(s['invalid_window_tokens'], '{:.0f}')}"
            lines.append(f"| {streams} | {names[name]} | {rate} | {window} | "
                         f"{fmt(s['itl_p50_ms'], '{:.1f}')} / {fmt(s['itl_p99_ms'], '{:.1f}')} | {ratio} |")
    if x_single:
        lines.append("")
        lines.append(f"×single-stream (decode tok/s at {top} streams / at 1 stream): " + ", ".join(
            f"{names[n]} {fmt(v, '{:.2f}×')}" for n, v in x_single.items()))
    others = [f["others_cpu_fraction"] for r in rounds for f in r["levels"]]
    client_cpu = [f["client_cpu_cores"] for r in rounds for f in r["levels"] + r["decode"]]
    decode_others = [f["others_cpu_fraction"] for r in rounds for f in r["decode"]]
    usage = all(f["usage_chunks"] == f["requests"] - f["errors"] for r in rounds for f in r["levels"])
    short = {n: (sum(decode_summary[str(c)][n]["streams_short"] for c in decode_levels),
                 sum(decode_summary[str(c)][n]["streams_total"] for c in decode_levels)) for n in servers}
    decode_errors = sum(decode_summary[str(c)][n]["errors"] for c in decode_levels for n in servers)
    notes = [f"CPU: {cpu}, {os.cpu_count()} CPUs", f"commit {commit}",
             f"medians of {args.runs} round(s) (ours then llama in each, servers restarted per round); "
             f"one untimed warm-up request per server start",
             *([f"throughput levels: max(C, {args.requests}) streaming chat requests per level over {len(PROMPTS)} "
                f"coding prompts in turn, temperature 0, max_tokens {args.max_tokens}",
                "agg tok/s = completion tokens / wall time of the level; TTFT = request sent to first content chunk; "
                "ITL = gaps between content chunks (all requests pooled); errors summed over the rounds",
                "completion tokens from usage.completion_tokens in every request" if usage else
                "completion tokens: usage.completion_tokens where a server sent it, else content chunks counted"]
               if levels else []),
             *([f"decode runs (on the same server instance, after the throughput levels): C streams started together "
                f"(prompts 1..C of the list), max_tokens {args.decode_tokens}, temperature 0, ignore_eos true; window "
                f"= from the last stream's first content chunk to the first stream's last one; decode tok/s = content "
                f"chunks of all streams inside (start, end] / window length (1 chunk = 1 token; at 1 stream: tokens "
                f"after the first / first-to-last chunk time); ITL = gaps with both ends in the window, all streams "
                f"pooled; a run with a failed stream or a window under 1 s is invalid and left out of the medians",
                "streams that stopped before max_tokens (end-of-sequence despite ignore_eos, which shortens the "
                "window): " + ", ".join(f"{names[n]} {a}/{b}" for n, (a, b) in short.items())
                + (f"; failed streams: {decode_errors}" if decode_errors else "")]
               if decode_levels else []),
             *[f"{names[n]}: {shlex.join(command(n, 0)).replace('--port 0', '--port P')}" for n in servers],
             *([f"llama-server {llama_version}; requests with cache_prompt "
                f"{'on (its default)' if args.prompt_cache else 'false (no prefix reuse across requests)'}"]
               if "llama" in servers else []),
             f"prompt caches: {'on (both servers)' if args.prompt_cache else 'off (both servers)'}",
             f"client (this process, asyncio + httpx2) CPU: up to {max(client_cpu):.2f} cores",
             *([f"CPU used by other processes during the levels: {min(others):.0%}–{max(others):.0%} of the machine"
                + ("  ** BUSY MACHINE: not comparable with a quiet run **" if max(others) > 0.10 else "")]
               if others else []),
             *([f"CPU used by other processes during the decode runs: {min(decode_others):.0%}–{max(decode_others):.0%} "
                f"of the machine"
                + ("  ** BUSY MACHINE: not comparable with a quiet run **" if max(decode_others) > 0.10 else "")]
               if decode_others else []),
             *notes]
    table = "\n".join(lines + [""] + notes)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "cpu": cpu, "cpus": os.cpu_count(), "commit": commit, "llama_server_version": llama_version,
            "config": {"servers": servers, "clients": levels, "requests": args.requests, "max_tokens": args.max_tokens,
                       "decode_clients": decode_levels, "decode_tokens": args.decode_tokens,
                       "runs": args.runs, "parallel": args.parallel, "threads": args.threads, "ctx": args.ctx,
                       "prefill_chunk": args.prefill_chunk, "int8": args.int8, "onnx": args.onnx, "model": str(args.model),
                       "prompt_cache": args.prompt_cache, "prompts": PROMPTS, "warmup_prompt": WARMUP_PROMPT},
            "summary": summary, "ratios_ours_over_llama_agg_tokens_per_s": ratios,
            "decode_summary": decode_summary, "decode_ratios_ours_over_llama": decode_ratios,
            "decode_x_single_stream": {"streams": top, "ratios": x_single} if x_single else None,
            "rounds": rounds}, indent=1))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
