"""End-to-end test of `qwen-run serve` through the official openai Python client.

    .venv/bin/python scripts/test_server.py [--qwen-run .build-test/release/qwen-run]
        [--model Models/fixtures/tiny-qwen2] [--load-requests 64] [--keep-going] [--groups NAME,...]

Starts the server as a subprocess (never builds it; scripts/test builds .build-test) on a free
port, waits for GET /health, and checks the OpenAI API behaviour and the server's extensions:

  health/metrics  /health is {"status":"ok"}, the "listening on" line is on stderr, /metrics is
                  Prometheus text with the qwen_* counters, gauges and histograms, and
                  qwen_requests_total / qwen_prompt_tokens_total / qwen_generated_tokens_total
                  count the requests made and their usage
  models          client.models.list() and GET /v1/models name the model directory
  chat            a non-streaming greedy chat completion is well formed (ids, object, role,
                  finish_reason, usage sums), deterministic, max_completion_tokens = max_tokens;
                  tools reach the prompt (too long for the tiny model: 400; tool_choice "none"
                  leaves them out), a tool call and its result are rendered into the prompt
  chat stream     the streamed deltas (stream_options.include_usage) concatenate to the
                  non-streaming text; role in the first chunk, one finish_reason, a final
                  usage chunk with choices [] and the same usage; raw SSE ends with [DONE]
  completions     /v1/completions (raw prompt, no chat template), non-stream and stream agree
  cache           a prompt sharing a 120-token prefix with an earlier one reports it as
                  usage.prompt_tokens_details.cached_tokens (and in qwen_prompt_cache_tokens_total);
                  a prompt run again from the cache gives the text and log probabilities of its
                  first run, bit for bit
  json            response_format json_object (greedy and seeded, chat and streamed): every
                  finished answer ("stop") is one JSON object to Python's json.loads; streamed =
                  not streamed; an unknown type is 400
  schema          response_format json_schema (structured outputs): on the real 0.5B, greedy and
                  seeded answers ("stop") follow the schema (each property present with its
                  type, checked here), and the client's `beta.chat.completions.parse` with
                  Pydantic models (a nested model, Optional; lists of models, a dict, an Optional
                  model, a union; a pattern, lengths, datetime, date, UUID, integer and number
                  bounds; a duration, an IPv6 address, an HttpUrl, a tuple, integer and float
                  multipleOf)
                  parses the answer; on both models, a schema with a union whose branches begin
                  alike (two objects), a list of types with an unknown one, an item count over 64,
                  an array root, a lookahead pattern, the idn-hostname format or a multipleOf below
                  10^-9 is 400 unsupported_parameter, a missing schema 400; an email format
                  answer is an address
  tools           tool_choice "required" and a named function (parallel_tool_calls false: one
                  call; by default one or more, two for a two-city question): on a model whose context holds the
                  tools (the real 0.5B), one call of a function among `tools` (the named one)
                  with arguments that json.loads reads as an object, finish_reason
                  "tool_calls", streamed the same; on the tiny fixture only the 400s (required
                  without tools, a name not among them, a bad tool_choice)
  infill          completions with a `suffix`: on a model whose tokenizer has Qwen2.5-Coder's
                  fill-in-the-middle tokens, the prompt is Hugging Face's tokenization of
                  <|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|> and the greedy text ONNX
                  Runtime's greedy ids decoded; on one without them (the tiny fixture), 400
  stop            a 2-3 character piece of a greedy output as `stop` cuts the output before its
                  first occurrence with finish_reason "stop" (chat list + stream, completions string)
  seeded          temperature 0.8 with the same seed gives the same text (also with top_p and
                  the top_k / min_p / repetition_penalty extensions, and streamed)
  prompts         completions with several prompts (strings and token ids) and n = 2, seeded:
                  choice p*2 + j is prompt p's n = 1 request with seed + j, usage adds up; with
                  echo, logprobs and max_tokens 0 each prompt is scored as alone; streamed, the
                  chunks put together per index are the same choices, with the same usage
  choices (n)     n = 3 with seed 42 at temperature 0.8: choice i is the n = 1 request with seed
                  42 + i (chat and completions), usage sums the choices; streamed, the chunks of
                  each index add up to its text with one finish_reason each; greedy n = 2 twice
                  the same text
  logprobs        on a server of the float32 file (--dtype fp32, float32 logits: no float16
                  rounding to blur ties), greedy completions from token ids with logprobs 5:
                  each token and its alternatives are ONNX Runtime's greedy ids and top 5 on the
                  same file, their log probabilities its log-softmax within 1e-4; chat logprobs / top_logprobs
                  (bytes, alternatives, streamed = not streamed); presence and frequency
                  penalties give the ids of ONNX Runtime's logits penalized here; `echo` with
                  max_tokens 0 scores the prompt: each token's log probability after the ones
                  before it (the first null) and its top 3 are ONNX Runtime's over the whole
                  prompt within 1e-4; with max_tokens 4, the prompt's text and scores, then the
                  completion's as without echo; streamed, the prompt's text first
  errors          400 (bad JSON, temperature -1, n=17, empty messages, unknown role, context
                  exceeded, top_logprobs without logprobs or over 20, logprobs over 20), 404 (unknown model, unknown route), 413 (body over
                  --max-body-bytes) as OpenAI error objects, through the client's exceptions
                  and raw HTTP; 401 on a server with --api-key; 429 on one with
                  --max-queue 0 --max-batch 1 while a request is running; a request head
                  over 64 KB refused (400 or 431, no body) with the server still serving
  concurrency     8 prompts run alone, then all at once: identical texts (greedy and seeded)
  disconnect      closing a stream after 2 chunks brings qwen_active_sequences back to 0
  load            --load-requests streaming requests from 32 clients: all end with [DONE] and
                  equal the greedy solo text of their prompt; server RSS after a second round
                  within 10 % + 8 MB of the first
  idle            after the load the server sleeps: under 1 % of one core over 5 s
  sigterm         SIGTERM while a stream is in flight: the stream completes (with [DONE], same
                  text) and the server exits 0 within 10 s, even with an idle keep-alive
                  connection open
  reasoning       on a copy of the model with a DeepSeek-R1-style chat template (the generation
                  prompt opens <think>): the answer's think block is message.reasoning_content and
                  the rest content, as this script splits the raw text (reasoning_format "none");
                  streamed as reasoning_content deltas then content deltas adding up to the same;
                  a json_object answer not split; an earlier reasoning_content accepted; an
                  unknown reasoning_format 400

Prints one line per check group, the failed check's message (and the tail of the server's
stderr) for each failure, and a summary line "test_server: N checks passed"; exits 1 if any
check fails (without --keep-going it stops at the first failed group). Needs the openai package
(scripts/requirements.txt) in .venv.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

openai = None  # imported by main(), so that --help and the setup errors work without it

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_QWEN_RUN = os.path.join(ROOT, ".build-test/release/qwen-run")
DEFAULT_MODEL = os.path.join(ROOT, "Models/fixtures/tiny-qwen2")

MAX_BODY_BYTES = 65536          # --max-body-bytes of the main server
API_KEY = "test-server-key"     # --api-key of the authentication server
LOAD_CLIENTS = 32

CONVERSATION = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello. How can I help?"},
    {"role": "user", "content": "Count to five."},
]
PROMPTS = [
    "Write a haiku about the sea.",
    "What is 2+2?",
    "List three colors.",
    "Tell me a joke about cats.",
    "Explain recursion briefly.",
    "Translate 'hello' into French.",
    "Name a prime number.",
    "Describe a sunset in one sentence.",
]
COMPLETION_PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"
# Digits are single tokens in Qwen2's pre-tokenizer, so this is > 600 tokens.
OVERLONG_TEXT = "1234567890 " * 60


# --- the check runner ----------------------------------------------------------------------------

class CheckFailed(Exception):
    pass


class SetupError(Exception):
    pass


class Checks:
    def __init__(self, keep_going):
        self.keep_going = keep_going
        self.passed = 0
        self.failed = []

    def check(self, condition, message):
        if not condition:
            raise CheckFailed(message)
        self.passed += 1

    def equal(self, got, want, what):
        self.check(got == want, f"{what}: got {short(got)}, expected {short(want)}")

    def fail(self, message):
        raise CheckFailed(message)

    def run(self, name, function, server, *args):
        """Runs one check group; returns False when the run should stop."""
        start = time.monotonic()
        try:
            function(self, server, *args)
        except CheckFailed as e:
            self._failed(name, str(e), server)
        except Exception as e:  # an unexpected exception is a failure of the group, not a crash
            here = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
            where = f" (test_server.py line {here[-1].lineno}: {here[-1].line})" if here else ""
            cause = f" ({type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ""
            self._failed(name, f"unexpected {type(e).__name__}: {e}{cause}{where}", server)
        else:
            print(f"ok    {name} ({time.monotonic() - start:.1f} s)", flush=True)
            return True
        return self.keep_going

    def _failed(self, name, message, server):
        self.failed.append(name)
        print(f"FAIL  {name}: {message}", flush=True)
        if server is not None:
            if server.proc is not None and server.proc.poll() is not None:
                print(f"      the server has exited, status {server.proc.returncode}", flush=True)
            print(indent(f"server ({server.describe()}) stderr, last lines:\n" + indent(server.log_tail())),
                  flush=True)


def short(value, limit=240):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def indent(text, prefix="      "):
    return "\n".join(prefix + line for line in text.splitlines())


def note(message):
    print(f"      note: {message}", flush=True)


# --- servers -----------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `qwen-run serve` subprocess on a free port; stdout/stderr go to files in log_dir."""

    def __init__(self, qwen_run, model, log_dir, name, extra=()):
        self.name = name
        self.model = model
        self.model_id = os.path.basename(os.path.normpath(model))
        self.port = free_port()
        self.argv = [qwen_run, "serve", "--model", model, "--host", "127.0.0.1",
                     "--port", str(self.port), *extra]
        self.stderr_path = os.path.join(log_dir, f"{name}.stderr")
        self.stdout_path = os.path.join(log_dir, f"{name}.stdout")
        self.proc = None

    def describe(self):
        return " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT + os.sep) else a for a in self.argv)

    def start(self, timeout=60):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            except OSError as e:
                raise SetupError(f"cannot start {self.describe()}: {e}")
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise SetupError(f"{self.describe()} exited with status {code} before /health answered;"
                                 f" its stderr:\n{indent(self.log_tail())}")
            try:
                status, _, _ = request(self.port, "GET", "/health", timeout=2)
                if status == 200:
                    return self
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SetupError(f"{self.describe()}: GET /health did not return 200 within {timeout} s;"
                                 f" its stderr:\n{indent(self.log_tail())}")
            time.sleep(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=15):
        text = self.stderr_text().rstrip()
        return "\n".join(text.splitlines()[-lines:]) if text else "(empty)"

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def client(self, api_key="x", timeout=120):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=api_key,
                             max_retries=0, timeout=timeout)

    def metrics(self):
        status, _, body = request(self.port, "GET", "/metrics")
        if status != 200:
            raise CheckFailed(f"GET /metrics: status {status}")
        return parse_metrics(body.decode("utf-8"))


# --- raw HTTP, SSE and Prometheus text -----------------------------------------------------------

def request(port, method, path, body=None, headers=None, timeout=60):
    """One HTTP request on a fresh connection: (status, headers with lower-case names, body bytes).
    A server may answer before reading the whole body (413): a failed send still reads the reply."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            conn.request(method, path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def sse_data(resp):
    """Yields the data of each server-sent event of an http.client response, as str."""
    data = []
    while True:
        line = resp.readline()
        if not line:
            if data:
                yield "\n".join(data)
            return
        line = line.rstrip(b"\r\n").decode("utf-8")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
        # comments (":…") and the other fields (event, id, retry) carry nothing here


class Stream:
    """A streaming POST read with http.client (chat or completions chunks), for the checks that
    need the raw SSE: [DONE], disconnects, many concurrent clients, SIGTERM."""

    def __init__(self, port, path, payload, headers=None, timeout=120):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock  # kept: http.client drops it when the response will close
        self.conn.request("POST", path, body=json.dumps(payload).encode("utf-8"),
                          headers={"Content-Type": "application/json", **(headers or {})})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.content_type = self.resp.getheader("Content-Type", "")
        self.events = sse_data(self.resp) if self.status == 200 else iter(())
        self.chunks = []           # parsed JSON chunks
        self.done = False          # [DONE] seen
        self.problems = []         # anything malformed
        self.text = ""
        self.finish_reasons = []
        self.usage = None
        self.first_role = None

    def next_chunk(self):
        """Reads one event; returns the chunk, "[DONE]", or None at the end of the stream."""
        for data in self.events:
            if self.done:
                self.problems.append(f"event after [DONE]: {short(data)}")
                continue
            if data == "[DONE]":
                self.done = True
                return data
            try:
                chunk = json.loads(data)
            except ValueError:
                self.problems.append(f"not JSON: {short(data)}")
                continue
            self._add(chunk)
            return chunk
        return None

    def _add(self, chunk):
        if not self.chunks:
            choices = chunk.get("choices") or [{}]
            self.first_role = (choices[0].get("delta") or {}).get("role")
        self.chunks.append(chunk)
        if "error" in chunk:
            self.problems.append(f"error chunk: {short(chunk)}")
            return
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            piece = choice["delta"].get("content") if "delta" in choice else choice.get("text")
            self.text += piece or ""
            if choice.get("finish_reason") is not None:
                self.finish_reasons.append(choice["finish_reason"])

    def read_all(self):
        try:
            while self.next_chunk() is not None:
                pass
        finally:
            self.close()
        return self

    def body(self):
        return self.resp.read()

    def disconnect(self):
        """Closes the TCP connection at once (FIN), without reading the rest."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close()

    def close(self):
        self.resp.close()
        self.conn.close()
        self.sock.close()


def parse_metrics(text):
    """Prometheus text format → ({sample name: [(labels dict, value)]}, {family name: type})."""
    samples, types = {}, {}
    pattern = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
            continue
        if not line or line.startswith("#"):
            continue
        m = pattern.match(line)
        if not m:
            raise CheckFailed(f"/metrics: line is not Prometheus text: {short(line)}")
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples.setdefault(m.group(1), []).append((labels, float(m.group(4))))
    return samples, types


def metric_sum(metrics, name):
    return sum(value for _, value in metrics[0].get(name, []))


def wait_for_metric(server, name, want, timeout):
    """Polls /metrics until `name` (summed over labels) equals want; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = metric_sum(server.metrics(), name)
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def chat_payload(model_id, content, max_tokens, stream=False, **extra):
    messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
    payload = {"model": model_id, "messages": messages, "max_tokens": max_tokens, "stream": stream}
    payload.update(extra)
    return payload


def greedy_chat(client, model_id, content, max_tokens, **extra):
    messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
    return client.chat.completions.create(model=model_id, messages=messages, max_tokens=max_tokens,
                                          temperature=0, **extra)


def context_length(model):
    try:
        with open(os.path.join(model, "config.json")) as f:
            return int(json.load(f)["max_position_embeddings"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def long_max_tokens(server, client, messages):
    """max_tokens for a request meant to run long: 512, or what the context leaves after the
    prompt (the tiny fixture's context is 256 positions)."""
    probe = greedy_chat(client, server.model_id, messages, 1)
    limit = context_length(server.model)
    if limit is None:
        return 512
    return max(1, min(512, limit - probe.usage.prompt_tokens - 1))


def expect_api_error(c, what, exception, status, call, type_=None, code=None, contains=None):
    """Runs call(), which must raise `exception` with the HTTP status and an OpenAI error object."""
    try:
        call()
    except exception as e:
        c.equal(e.status_code, status, f"{what}: status")
        check_error_object(c, what, e.body, type_, code, contains)
        return e
    except openai.APIStatusError as e:
        c.fail(f"{what}: {type(e).__name__} with status {e.status_code}, expected {exception.__name__}"
               f" ({status}); body {short(e.body)}")
    except openai.APIConnectionError as e:
        c.fail(f"{what}: connection error ({e.__cause__ or e}), expected a {status} response")
    c.fail(f"{what}: the request succeeded, expected {exception.__name__} ({status})")


def expect_raw_error(c, what, reply, status, type_=None, code=None):
    got_status, headers, body = reply
    c.equal(got_status, status, f"{what}: status")
    try:
        document = json.loads(body)
    except ValueError:
        c.fail(f"{what}: body is not JSON: {short(body)}")
    c.check(isinstance(document, dict) and isinstance(document.get("error"), dict),
            f"{what}: body is not an OpenAI error object {{\"error\": {{…}}}}: {short(document)}")
    check_error_object(c, what, document["error"], type_, code, None)


def check_error_object(c, what, error, type_, code, contains):
    """error: the inner object of {"error": {...}} (what the openai client keeps as e.body)."""
    c.check(isinstance(error, dict), f"{what}: error body is not an object: {short(error)}")
    for key in ("message", "type", "param", "code"):
        c.check(key in error, f"{what}: error object has no {key!r}: {short(error)}")
    c.check(isinstance(error["message"], str) and error["message"].strip() != "",
            f"{what}: empty error message: {short(error)}")
    c.check(isinstance(error["type"], str) and error["type"] != "", f"{what}: error type: {short(error)}")
    if type_ is not None:
        c.equal(error["type"], type_, f"{what}: error.type")
    if code is not None:
        c.equal(error["code"], code, f"{what}: error.code")
    if contains is not None:
        c.check(contains in error["message"].lower(),
                f"{what}: message {short(error['message'])} does not contain {contains!r}")


# --- checks on the main server -------------------------------------------------------------------

REQUIRED_METRICS = {
    "qwen_requests_total": "counter",
    "qwen_prompt_tokens_total": "counter",
    "qwen_generated_tokens_total": "counter",
    "qwen_time_to_first_token_seconds": "histogram",
    "qwen_inter_token_latency_seconds": "histogram",
    "qwen_queue_depth": "gauge",
    "qwen_active_sequences": "gauge",
    "qwen_batch_size": "histogram",
}


def check_health_and_metrics(c, server):
    status, headers, body = request(server.port, "GET", "/health")
    c.equal(status, 200, "GET /health status")
    c.equal(json.loads(body), {"status": "ok"}, "GET /health body")
    # "qwen-run serve: listening on http://127.0.0.1:PORT"; other words between the two are fine.
    listening = rf"^qwen-run serve:.*listening on http://127\.0\.0\.1:{server.port}\b"
    c.check(re.search(listening, server.stderr_text(), re.MULTILINE),
            f"stderr has no line 'qwen-run serve: listening on http://127.0.0.1:{server.port}'")

    status, headers, body = request(server.port, "GET", "/metrics")
    c.equal(status, 200, "GET /metrics status")
    c.check(headers.get("content-type", "").startswith("text/plain"),
            f"GET /metrics Content-Type {headers.get('content-type')!r}, expected text/plain")
    samples, types = parse_metrics(body.decode("utf-8"))
    for name, kind in REQUIRED_METRICS.items():
        family = name[:-len("_total")] if kind == "counter" else name
        c.check(types.get(name, types.get(family)) == kind, f"/metrics: no '# TYPE {name} {kind}' line")
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                c.check(name + suffix in samples, f"/metrics: no {name}{suffix} samples")
            check_histogram(c, samples, name)
        else:
            c.check(name in samples, f"/metrics: no {name} sample")
    c.equal(metric_sum((samples, types), "qwen_active_sequences"), 0, "qwen_active_sequences when idle")
    c.equal(metric_sum((samples, types), "qwen_queue_depth"), 0, "qwen_queue_depth when idle")


def check_histogram(c, samples, name):
    """Buckets cumulative and non-decreasing in le, the +Inf bucket equal to _count (per label set)."""
    groups = {}
    for labels, value in samples[name + "_bucket"]:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        c.check("le" in labels, f"/metrics: {name}_bucket without le label")
        groups.setdefault(rest, []).append((float(labels["le"]), value))
    counts = {tuple(sorted(labels.items())): value for labels, value in samples[name + "_count"]}
    for rest, buckets in groups.items():
        buckets.sort()
        values = [v for _, v in buckets]
        c.check(values == sorted(values), f"/metrics: {name} buckets not cumulative: {buckets}")
        c.check(buckets[-1][0] == float("inf"), f"/metrics: {name} has no le=\"+Inf\" bucket")
        c.equal(buckets[-1][1], counts.get(rest), f"/metrics: {name} +Inf bucket vs _count")


def check_request_counting(c, server):
    client = server.client()
    before = server.metrics()
    metric_reads = 1
    prompt_tokens = generated = 0
    for prompt in PROMPTS[:3]:
        r = greedy_chat(client, server.model_id, prompt, 8)
        prompt_tokens += r.usage.prompt_tokens
        generated += r.usage.completion_tokens
    for stream in (False, True):
        r = client.completions.create(model=server.model_id, prompt=COMPLETION_PROMPT, max_tokens=8,
                                      temperature=0, stream=stream,
                                      **({"stream_options": {"include_usage": True}} if stream else {}))
        usage = [chunk for chunk in r][-1].usage if stream else r.usage
        prompt_tokens += usage.prompt_tokens
        generated += usage.completion_tokens
    client.close()
    made = 5

    def delta(name):
        return metric_sum(after, name) - metric_sum(before, name)

    deadline = time.monotonic() + 2  # counters may be updated just after the response is sent
    while True:
        after = server.metrics()
        metric_reads += 1
        if (delta("qwen_requests_total") >= made and delta("qwen_prompt_tokens_total") >= prompt_tokens
                and delta("qwen_generated_tokens_total") >= generated) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # Whether the GET /metrics of the window count is the server's choice: allow them.
    c.check(made <= delta("qwen_requests_total") <= made + metric_reads,
            f"qwen_requests_total grew by {delta('qwen_requests_total'):.0f} over {made} completion requests"
            f" (and {metric_reads} GET /metrics)")
    c.equal(delta("qwen_prompt_tokens_total"), prompt_tokens, "qwen_prompt_tokens_total growth vs usage")
    c.check(generated <= delta("qwen_generated_tokens_total") <= generated + made,
            f"qwen_generated_tokens_total grew by {delta('qwen_generated_tokens_total')}, usage says"
            f" {generated} completion tokens (+ at most one end token per request)")
    if generated > 0:
        c.check(delta("qwen_time_to_first_token_seconds_count") > 0,
                "qwen_time_to_first_token_seconds_count did not grow")
        c.check(delta("qwen_batch_size_count") > 0, "qwen_batch_size_count did not grow")
    if generated > made:
        c.check(delta("qwen_inter_token_latency_seconds_count") > 0,
                "qwen_inter_token_latency_seconds_count did not grow")


def check_models(c, server):
    client = server.client()
    ids = [m.id for m in client.models.list()]
    client.close()
    c.check(server.model_id in ids, f"client.models.list(): {ids}, expected {server.model_id!r}")
    status, _, body = request(server.port, "GET", "/v1/models")
    c.equal(status, 200, "GET /v1/models status")
    document = json.loads(body)
    c.equal(document.get("object"), "list", "GET /v1/models object")
    c.equal(len(document.get("data", [])), 1, "GET /v1/models: number of models")
    model = document["data"][0]
    c.equal(model.get("id"), server.model_id, "model id")
    c.equal(model.get("object"), "model", "model object")
    c.equal(model.get("owned_by"), "qwen-swift", "model owned_by")
    c.check(isinstance(model.get("created"), int), f"model created is not an integer: {short(model)}")


def check_usage(c, what, usage, max_tokens, finish_reason):
    c.check(usage is not None, f"{what}: no usage")
    c.check(usage.prompt_tokens > 0, f"{what}: usage.prompt_tokens {usage.prompt_tokens}")
    c.check(0 <= usage.completion_tokens <= max_tokens,
            f"{what}: usage.completion_tokens {usage.completion_tokens} (max_tokens {max_tokens})")
    c.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, f"{what}: usage.total_tokens")
    if finish_reason == "length":
        c.equal(usage.completion_tokens, max_tokens, f"{what}: completion_tokens with finish_reason length")


def check_chat(c, server):
    client = server.client()
    before = time.time()
    r = greedy_chat(client, server.model_id, CONVERSATION, 16)
    c.check(isinstance(r.id, str) and r.id != "", f"id {short(r.id)}")
    c.equal(r.object, "chat.completion", "object")
    c.check(isinstance(r.created, int) and before - 60 <= r.created <= time.time() + 60,
            f"created {r.created} is not the current Unix time")
    c.equal(r.model, server.model_id, "model")
    c.equal(len(r.choices), 1, "number of choices")
    choice = r.choices[0]
    c.equal(choice.index, 0, "choices[0].index")
    c.equal(choice.message.role, "assistant", "message.role")
    c.check(isinstance(choice.message.content, str), f"message.content {short(choice.message.content)}")
    c.check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason!r}")
    check_usage(c, "usage", r.usage, 16, choice.finish_reason)

    again = greedy_chat(client, server.model_id, CONVERSATION, 16)
    c.equal(again.choices[0].message.content, choice.message.content, "the same greedy request again")
    c.check(again.id != r.id, f"two responses share the id {r.id!r}")
    other = client.chat.completions.create(model=server.model_id, messages=CONVERSATION,
                                           max_completion_tokens=16, temperature=0)
    c.equal(other.choices[0].message.content, choice.message.content, "max_completion_tokens 16 vs max_tokens 16")

    # Tools go through the chat template: the tiny fixture's context (256 tokens; its tokenizer has
    # few merges) cannot hold Qwen2.5's tools section, so a request with tools is refused as too
    # long, and tool_choice "none" leaves them out; an assistant's tool call and a tool result are
    # rendered into the prompt.
    short_chat = [{"role": "user", "content": "hi"}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    base = client.chat.completions.create(model=server.model_id, messages=short_chat, max_tokens=2, temperature=0)
    expect_api_error(c, "tools make the tiny model's prompt too long", openai.BadRequestError, 400,
                     lambda: client.chat.completions.create(model=server.model_id, messages=short_chat, tools=tools,
                                                            max_tokens=2), code="context_length_exceeded")
    no_tools = client.chat.completions.create(model=server.model_id, messages=short_chat, tools=tools,
                                              tool_choice="none", max_tokens=2, temperature=0)
    c.equal(no_tools.usage.prompt_tokens, base.usage.prompt_tokens, "tool_choice none: the prompt without tools")
    history = short_chat + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    after_tool = client.chat.completions.create(model=server.model_id, messages=history, tools=tools,
                                                tool_choice="none", max_tokens=2, temperature=0)
    c.check(after_tool.usage.prompt_tokens > base.usage.prompt_tokens + 10,
            f"a tool call and its result in the prompt: {after_tool.usage.prompt_tokens} vs {base.usage.prompt_tokens} tokens")
    client.close()


def check_chat_stream(c, server):
    client = server.client()
    reference = greedy_chat(client, server.model_id, CONVERSATION, 16)
    chunks = list(client.chat.completions.create(model=server.model_id, messages=CONVERSATION, max_tokens=16,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    client.close()
    c.check(len(chunks) >= 2, f"{len(chunks)} chunks")
    for chunk in chunks:
        c.equal(chunk.object, "chat.completion.chunk", "chunk object")
        c.equal(chunk.id, chunks[0].id, "chunk id (the same in every chunk)")
        c.equal(chunk.model, server.model_id, "chunk model")
    usage_chunk, content_chunks = chunks[-1], chunks[:-1]
    c.equal(usage_chunk.choices, [], "the last chunk's choices (include_usage)")
    c.check(all(chunk.choices for chunk in content_chunks), "a chunk before the usage chunk has no choices")
    c.equal(content_chunks[0].choices[0].delta.role, "assistant", "the first chunk's delta.role")
    text = "".join(chunk.choices[0].delta.content or "" for chunk in content_chunks)
    c.equal(text, reference.choices[0].message.content, "streamed text vs non-streaming text")
    reasons = [chunk.choices[0].finish_reason for chunk in content_chunks]
    set_reasons = [reason for reason in reasons if reason is not None]
    c.equal(set_reasons, [reference.choices[0].finish_reason], "finish_reasons set in the stream")
    c.check(reasons[-1] is not None, "finish_reason is not in the last choices chunk")
    c.equal(usage_chunk.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}),
            reference.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}),
            "usage of the stream vs the non-streaming response")

    raw = Stream(server.port, "/v1/chat/completions",
                 chat_payload(server.model_id, CONVERSATION, 16, stream=True, temperature=0))
    c.equal(raw.status, 200, "raw stream status")
    c.check(raw.content_type.startswith("text/event-stream"), f"stream Content-Type {raw.content_type!r}")
    raw.read_all()
    c.check(raw.done, "raw stream did not end with data: [DONE]")
    c.equal(raw.problems, [], "raw stream problems")
    c.equal(raw.text, reference.choices[0].message.content, "raw streamed text")
    c.check(raw.usage is None, "usage chunk sent without stream_options.include_usage")


def check_completions(c, server):
    client = server.client()
    r = client.completions.create(model=server.model_id, prompt=COMPLETION_PROMPT, max_tokens=16, temperature=0)
    c.check(isinstance(r.id, str) and r.id != "", f"id {short(r.id)}")
    c.equal(r.object, "text_completion", "object")
    c.equal(r.model, server.model_id, "model")
    c.equal(len(r.choices), 1, "number of choices")
    c.check(isinstance(r.choices[0].text, str), f"choices[0].text {short(r.choices[0].text)}")
    c.check(r.choices[0].finish_reason in ("stop", "length"), f"finish_reason {r.choices[0].finish_reason!r}")
    check_usage(c, "usage", r.usage, 16, r.choices[0].finish_reason)
    c.check(r.usage.prompt_tokens <= len(COMPLETION_PROMPT.encode("utf-8")),
            f"usage.prompt_tokens {r.usage.prompt_tokens} > the prompt's bytes: a chat template was applied?")

    chunks = list(client.completions.create(model=server.model_id, prompt=COMPLETION_PROMPT, max_tokens=16,
                                            temperature=0, stream=True, stream_options={"include_usage": True}))
    client.close()
    c.check(len(chunks) >= 2, f"{len(chunks)} chunks")
    for chunk in chunks:
        c.equal(chunk.object, "text_completion", "chunk object")
        c.equal(chunk.id, chunks[0].id, "chunk id (the same in every chunk)")
    usage_chunk, content_chunks = chunks[-1], chunks[:-1]
    c.equal(usage_chunk.choices, [], "the last chunk's choices (include_usage)")
    c.check(all(chunk.choices for chunk in content_chunks), "a chunk before the usage chunk has no choices")
    text = "".join(chunk.choices[0].text or "" for chunk in content_chunks)
    c.equal(text, r.choices[0].text, "streamed text vs non-streaming text")
    reasons = [chunk.choices[0].finish_reason for chunk in content_chunks if chunk.choices[0].finish_reason]
    c.equal(reasons, [r.choices[0].finish_reason], "finish_reasons set in the stream")
    c.equal((usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens),
            (r.usage.prompt_tokens, r.usage.completion_tokens), "usage of the stream vs the non-streaming response")


def pick_stop(text):
    """A 3- (else 2-) character piece of printable characters nearest the middle of text, or None."""
    for n in (3, 2):
        middle = (len(text) - n) // 2
        for i in sorted(range(len(text) - n + 1), key=lambda i: abs(i - middle)):
            piece = text[i:i + n]
            if all(ch.isprintable() and ch != "\ufffd" for ch in piece) and piece.strip() == piece:
                return piece
    return None


def check_stop(c, server):
    client = server.client()
    for prompt in PROMPTS:
        full = greedy_chat(client, server.model_id, prompt, 32).choices[0].message.content
        stop = pick_stop(full) if len(full) >= 6 else None
        if stop:
            break
    else:
        c.fail(f"no greedy output of {len(PROMPTS)} prompts has a printable 2-3 character piece to stop at")
    want = full[:full.index(stop)]
    r = greedy_chat(client, server.model_id, prompt, 32, stop=[stop, "@@never@@"])
    c.equal(r.choices[0].message.content, want, f"stop=[{stop!r}, …] on {short(full)}")
    c.equal(r.choices[0].finish_reason, "stop", "finish_reason with a stop string")
    streamed = Stream(server.port, "/v1/chat/completions",
                      chat_payload(server.model_id, prompt, 32, stream=True, temperature=0, stop=[stop])).read_all()
    c.check(streamed.done and not streamed.problems, f"stream with stop: done {streamed.done}, {streamed.problems}")
    c.equal(streamed.text, want, f"streamed text with stop=[{stop!r}]")
    c.equal(streamed.finish_reasons, ["stop"], "streamed finish_reasons with a stop string")

    full = client.completions.create(model=server.model_id, prompt=COMPLETION_PROMPT, max_tokens=32,
                                     temperature=0).choices[0].text
    stop = pick_stop(full)
    if stop is None:
        note(f"completions: no printable piece in {short(full)}; string stop not checked")
    else:
        r = client.completions.create(model=server.model_id, prompt=COMPLETION_PROMPT, max_tokens=32,
                                      temperature=0, stop=stop)
        c.equal(r.choices[0].text, full[:full.index(stop)], f"completions stop={stop!r} on {short(full)}")
        c.equal(r.choices[0].finish_reason, "stop", "completions finish_reason with a stop string")
    client.close()


def check_seeded(c, server):
    client = server.client()

    def sample(seed, **extra):
        return client.chat.completions.create(model=server.model_id, messages=[{"role": "user", "content": PROMPTS[0]}],
                                              max_tokens=24, temperature=0.8, seed=seed, **extra).choices[0].message.content

    first = sample(42)
    c.equal(sample(42), first, "temperature 0.8 seed 42, second time")
    if sample(43) == first:
        note("seeds 42 and 43 gave the same text (allowed, not asserted)")
    extensions = {"top_p": 0.9, "extra_body": {"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}}
    with_extensions = sample(7, **extensions)
    c.equal(sample(7, **extensions), with_extensions, "seed 7 with top_p/top_k/min_p/repetition_penalty, second time")
    streamed = Stream(server.port, "/v1/chat/completions",
                      chat_payload(server.model_id, PROMPTS[0], 24, stream=True, temperature=0.8, seed=42)).read_all()
    c.check(streamed.done and not streamed.problems, f"seeded stream: done {streamed.done}, {streamed.problems}")
    c.equal(streamed.text, first, "seed 42 streamed vs non-streaming")
    client.close()


def check_prompts(c, server):
    client = server.client()
    model = server.model_id
    prompts = [COMPLETION_PROMPT, "def add(a, b):", [17, 203, 88, 311, 45]]
    several = client.completions.create(model=model, prompt=prompts, max_tokens=8, temperature=0.8, seed=5, n=2)
    c.equal([ch.index for ch in several.choices], list(range(6)), "several prompts: choice indices")
    singles = [[client.completions.create(model=model, prompt=p, max_tokens=8, temperature=0.8, seed=5 + j)
                for j in range(2)] for p in prompts]
    for p in range(3):
        for j in range(2):
            c.equal(several.choices[p * 2 + j].text, singles[p][j].choices[0].text,
                    f"several prompts: choice {p * 2 + j} vs prompt {p} alone with seed {5 + j}")
    c.equal(several.usage.prompt_tokens, sum(s[0].usage.prompt_tokens for s in singles), "several prompts: usage.prompt_tokens")
    c.equal(several.usage.completion_tokens, sum(x.usage.completion_tokens for s in singles for x in s),
            "several prompts: usage.completion_tokens")
    scored = client.completions.create(model=model, prompt=prompts, max_tokens=0, echo=True, logprobs=2)
    for p in range(3):
        alone = client.completions.create(model=model, prompt=prompts[p], max_tokens=0, echo=True, logprobs=2)
        c.equal(scored.choices[p].logprobs.model_dump(), alone.choices[0].logprobs.model_dump(),
                f"several prompts scored: prompt {p} as alone")
        c.equal(scored.choices[p].text, alone.choices[0].text, f"several prompts scored: prompt {p}'s echo")
    # Streamed: the chunks of every choice, interleaved, each naming its index; put together per
    # index they are the answers above, and the usage chunk is the same usage.
    texts, finishes, usage = {}, {}, None
    for chunk in client.completions.create(model=model, prompt=prompts, max_tokens=8, temperature=0.8, seed=5, n=2,
                                           stream=True, stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            texts[ch.index] = texts.get(ch.index, "") + ch.text
            if ch.finish_reason is not None:
                finishes[ch.index] = ch.finish_reason
    c.equal(sorted(texts), list(range(6)), "several prompts streamed: choice indices")
    for k in range(6):
        c.equal(texts.get(k), several.choices[k].text, f"several prompts streamed: choice {k} vs not streamed")
        c.equal(finishes.get(k), several.choices[k].finish_reason, f"several prompts streamed: choice {k} finish_reason")
    c.check(usage is not None and usage.prompt_tokens == several.usage.prompt_tokens
            and usage.completion_tokens == several.usage.completion_tokens,
            f"several prompts streamed: usage {usage} vs {several.usage}")
    echoed = {}
    for chunk in client.completions.create(model=model, prompt=prompts, max_tokens=0, echo=True, stream=True):
        for ch in chunk.choices:
            echoed[ch.index] = echoed.get(ch.index, "") + ch.text
    c.equal([echoed.get(p) for p in range(3)], [scored.choices[p].text for p in range(3)],
            "several prompts streamed with echo and max_tokens 0: each prompt")
    expect_raw_error(c, "a prompt array holding an object", request(server.port, "POST", "/v1/completions",
                     body={"prompt": ["a", {"b": 1}], "max_tokens": 2}), 400, "invalid_request_error")
    client.close()


def check_choices(c, server):
    client = server.client()
    model = server.model_id
    messages = [{"role": "user", "content": PROMPTS[3]}]

    def chat(n, seed, **extra):
        return client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0.8,
                                              seed=seed, n=n, **extra)

    several = chat(3, 42)
    c.equal([choice.index for choice in several.choices], [0, 1, 2], "n=3: choice indices")
    singles = [chat(1, 42 + i) for i in range(3)]
    for i, single in enumerate(singles):
        c.equal(several.choices[i].message.content, single.choices[0].message.content,
                f"n=3 seed 42: choice {i} vs n=1 seed {42 + i}")
        c.equal(several.choices[i].finish_reason, single.choices[0].finish_reason, f"n=3: choice {i} finish_reason")
    c.equal(several.usage.prompt_tokens, singles[0].usage.prompt_tokens, "n=3: usage.prompt_tokens (the prompt once)")
    c.equal(several.usage.completion_tokens, sum(s.usage.completion_tokens for s in singles),
            "n=3: usage.completion_tokens (all choices)")

    chunks = list(chat(3, 42, stream=True, stream_options={"include_usage": True}))
    texts, reasons, roles = {}, {}, {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.delta.role:
                roles[choice.index] = roles.get(choice.index, 0) + 1
            if choice.finish_reason:
                reasons.setdefault(choice.index, []).append(choice.finish_reason)
    c.equal(texts, {i: several.choices[i].message.content for i in range(3)}, "n=3 streamed: text per index")
    c.equal(reasons, {i: [several.choices[i].finish_reason] for i in range(3)}, "n=3 streamed: finish_reasons per index")
    c.equal(roles, {0: 1, 1: 1, 2: 1}, "n=3 streamed: one role delta per index")
    c.equal(chunks[-1].choices, [], "n=3 streamed: the usage chunk last")
    c.equal(chunks[-1].usage.completion_tokens, several.usage.completion_tokens, "n=3 streamed: usage")

    text = client.completions.create(model=model, prompt=COMPLETION_PROMPT, max_tokens=12, temperature=0.8, seed=7, n=2)
    for i in range(2):
        single = client.completions.create(model=model, prompt=COMPLETION_PROMPT, max_tokens=12, temperature=0.8,
                                           seed=7 + i)
        c.equal(text.choices[i].text, single.choices[0].text, f"completions n=2 seed 7: choice {i} vs n=1 seed {7 + i}")
    greedy = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0, n=2)
    c.equal(greedy.choices[0].message.content, greedy.choices[1].message.content, "greedy n=2: the same text twice")
    client.close()


def byte_decoder():
    """GPT-2's byte-level alphabet inverted: the token strings of tokenizer.json back to bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def token_bytes_table(model):
    """Token id -> its bytes, from the model's tokenizer.json (byte-level BPE and added tokens)."""
    with open(os.path.join(model, "tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    decode = byte_decoder()
    table = {i: bytes(decode[ch] for ch in token) for token, i in spec["model"]["vocab"].items()}
    for added in spec.get("added_tokens", []):
        table[added["id"]] = added["content"].encode("utf-8")
    return table


class ReferenceRun:
    """Greedy decoding by ONNX Runtime (default optimisations) on a model file, with OpenAI's
    presence and frequency penalties applied here (numpy) to the logits of the ids generated so
    far."""

    def __init__(self, path):
        import numpy as np
        from qwen_onnx import KVRunner, ort_session
        self.np, self.KVRunner = np, KVRunner
        self.session = ort_session(path, "enable_all")

    def greedy(self, prompt_ids, steps, presence=0.0, frequency=0.0, bias=None):
        """[(id, log-softmax row of the raw logits)] for `steps` greedy steps; `bias` ({id: value},
        OpenAI's logit_bias) added first, as HF's SequenceBiasLogitsProcessor does."""
        np = self.np
        runner = self.KVRunner(self.session)
        logits, _ = runner.step(list(prompt_ids))
        out, counts = [], {}
        for _ in range(steps):
            row = logits[0, -1].astype(np.float64)
            shifted = row - row.max()
            logsoftmax = shifted - np.log(np.exp(shifted).sum())
            scores = row.astype(np.float32).copy()
            for token, value in (bias or {}).items():
                scores[token] += np.float32(value)
            for token, n in counts.items():
                scores[token] -= np.float32(frequency) * np.float32(n)
                scores[token] -= np.float32(presence)
            token = int(np.argmax(scores))
            out.append((token, logsoftmax))
            counts[token] = counts.get(token, 0) + 1
            logits, _ = runner.step([token])
        return out


def check_logprobs(c, server):
    """`server` runs the float32 file (onnx/model.onnx)."""
    client = server.client()
    model = server.model_id
    reference = ReferenceRun(os.path.join(server.model, "onnx", "model.onnx"))
    spelled = token_bytes_table(server.model)
    prompt_ids = [17, 203, 88, 311, 45, 402, 9, 150, 260, 71]
    steps, top = 12, 5

    r = client.completions.create(model=model, prompt=prompt_ids, max_tokens=steps, temperature=0, logprobs=top,
                                  extra_body={"ignore_eos": True})
    want = reference.greedy(prompt_ids, steps)
    lp = r.choices[0].logprobs
    c.check(lp is not None, "completions logprobs is null")
    c.equal(len(lp.tokens), steps, "completions: number of logprob tokens")
    worst = 0.0
    for i, ((token, row), text, value, alternatives) in enumerate(zip(want, lp.tokens, lp.token_logprobs, lp.top_logprobs)):
        c.equal(text, spelled[token].decode("utf-8", "replace"), f"step {i}: token vs ONNX Runtime's greedy id {token}")
        worst = max(worst, abs(value - row[token]))
        order = sorted(range(len(row)), key=lambda t: (-row[t], t))[:top]
        expected = {}
        for t in order + [token]:
            expected.setdefault(spelled[t].decode("utf-8", "replace"), row[t])
        c.equal(sorted(alternatives), sorted(expected), f"step {i}: top_logprobs tokens (top {top} and the sampled)")
        for key, v in alternatives.items():
            worst = max(worst, abs(v - expected.get(key, float("inf"))))
    note(f"completions logprobs vs ONNX Runtime: max |Δ| {worst:.2e}")
    c.check(worst < 1e-4, f"completions logprobs differ from ONNX Runtime's log-softmax by {worst:.2e}")
    c.equal([o for o in lp.text_offset], [sum(len(t) for t in lp.tokens[:i]) for i in range(steps)],
            "text_offset: where each token's text begins")

    # Penalties: ONNX Runtime's logits penalized here, greedy; the logprobs stay the raw model's.
    # This prompt's greedy text repeats ids (24 steps), so each setting changes the ids (asserted).
    repeating = [68, 291, 433, 410, 391, 32, 130, 60, 253, 389]
    plain = [t for t, _ in reference.greedy(repeating, 24)]
    for presence, frequency in ((0.0, 1.5), (2.0, 0.0), (0.0, -2.0), (-2.0, 0.0)):
        r = client.completions.create(model=model, prompt=repeating, max_tokens=24, temperature=0, logprobs=0,
                                      presence_penalty=presence, frequency_penalty=frequency,
                                      extra_body={"ignore_eos": True})
        want = reference.greedy(repeating, 24, presence, frequency)
        what = f"presence_penalty {presence}, frequency_penalty {frequency}"
        c.check([t for t, _ in want] != plain, f"{what}: the reference's ids equal the unpenalized ones (no test)")
        got = r.choices[0].logprobs
        c.equal(got.tokens, [spelled[t].decode("utf-8", "replace") for t, _ in want],
                f"{what}: tokens vs ONNX Runtime's penalized greedy ids")
        for i, ((token, row), value) in enumerate(zip(want, got.token_logprobs)):
            c.check(abs(value - row[token]) < 1e-4, f"{what}, step {i}: logprob {value} vs the raw log-softmax {row[token]}")

    # logit_bias: the first greedy token banned and another raised (with a frequency penalty,
    # which applies after the bias), against ONNX Runtime's logits biased here.
    bias = {plain[0]: -100.0, 150: 4.5, 433: -2.0}
    r = client.completions.create(model=model, prompt=repeating, max_tokens=24, temperature=0, logprobs=0,
                                  frequency_penalty=0.5, logit_bias={str(k): v for k, v in bias.items()},
                                  extra_body={"ignore_eos": True})
    want = reference.greedy(repeating, 24, 0.0, 0.5, bias)
    c.check([t for t, _ in want] != [t for t, _ in reference.greedy(repeating, 24, 0.0, 0.5)],
            "logit_bias: the reference's ids equal the unbiased ones (no test)")
    c.equal(r.choices[0].logprobs.tokens, [spelled[t].decode("utf-8", "replace") for t, _ in want],
            "logit_bias: tokens vs ONNX Runtime's biased greedy ids")

    # echo: the prompt scored (lm-evaluation-harness's loglikelihood requests), against ORT's
    # log-softmax at every prompt position.
    import numpy as np
    from qwen_onnx import KVRunner
    scored_prompt = [68, 291, 433, 410, 391, 32, 130, 60, 253, 389, 17, 203, 88]
    logits, _ = KVRunner(reference.session).step(scored_prompt)
    rows = logits[0].astype(np.float64)
    shifted = rows - rows.max(axis=1, keepdims=True)
    ort = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    r = client.completions.create(model=model, prompt=scored_prompt, max_tokens=0, echo=True, logprobs=3)
    lp = r.choices[0].logprobs
    c.equal(lp.tokens, [spelled[t].decode("utf-8", "replace") for t in scored_prompt], "echo: the prompt's tokens")
    c.equal(r.choices[0].text, b"".join(spelled[t] for t in scored_prompt).decode("utf-8", "replace"), "echo: the prompt's text")
    c.equal(r.choices[0].finish_reason, "length", "echo with max_tokens 0: finish_reason")
    c.equal(r.usage.completion_tokens, 0, "echo with max_tokens 0: completion_tokens")
    c.check(lp.token_logprobs[0] is None and lp.top_logprobs[0] is None, "echo: the first token has no log probability")
    worst = 0.0
    for i in range(1, len(scored_prompt)):
        worst = max(worst, abs(lp.token_logprobs[i] - ort[i - 1][scored_prompt[i]]))
        order = sorted(range(ort.shape[1]), key=lambda t: (-ort[i - 1][t], t))[:3]
        expected = {}
        for t in order + [scored_prompt[i]]:
            expected.setdefault(spelled[t].decode("utf-8", "replace"), ort[i - 1][t])
        c.equal(sorted(lp.top_logprobs[i]), sorted(expected), f"echo: position {i} top_logprobs tokens")
        for key, v in lp.top_logprobs[i].items():
            worst = max(worst, abs(v - expected.get(key, float("inf"))))
    note(f"echo prompt logprobs vs ONNX Runtime: max |Δ| {worst:.2e}")
    c.check(worst < 1e-4, f"echo prompt logprobs differ from ONNX Runtime's by {worst:.2e}")
    both = client.completions.create(model=model, prompt=scored_prompt, max_tokens=4, temperature=0, echo=True, logprobs=3,
                                     extra_body={"ignore_eos": True})
    alone = client.completions.create(model=model, prompt=scored_prompt, max_tokens=4, temperature=0, logprobs=3,
                                      extra_body={"ignore_eos": True})
    c.equal(both.choices[0].text, r.choices[0].text + alone.choices[0].text, "echo with max_tokens 4: prompt + completion text")
    c.equal(both.choices[0].logprobs.token_logprobs, lp.token_logprobs + alone.choices[0].logprobs.token_logprobs,
            "echo with max_tokens 4: the prompt's scores, then the completion's")
    c.equal(both.choices[0].logprobs.text_offset[len(scored_prompt):],
            [len(r.choices[0].text) + o for o in alone.choices[0].logprobs.text_offset], "echo: the completion's offsets follow the prompt")
    chunks = list(client.completions.create(model=model, prompt=scored_prompt, max_tokens=4, temperature=0, echo=True,
                                            stream=True, extra_body={"ignore_eos": True}))
    c.equal(chunks[0].choices[0].text, r.choices[0].text, "echo streamed: the prompt's text first")
    c.equal("".join(ch.choices[0].text for ch in chunks if ch.choices), both.choices[0].text, "echo streamed: the whole text")

    # Chat: logprobs with bytes and top_logprobs; streamed the same as not.
    messages = [{"role": "user", "content": PROMPTS[0]}]
    r = client.chat.completions.create(model=model, messages=messages, max_tokens=steps, temperature=0,
                                       logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    c.check(0 < len(content) <= steps, f"chat logprobs: {len(content)} tokens for {r.usage.completion_tokens} generated")
    joined = b"".join(bytes(t.bytes) for t in content)
    c.equal(joined.decode("utf-8", "replace"), r.choices[0].message.content, "chat: the tokens' bytes spell the content")
    for i, t in enumerate(content):
        c.equal(len(t.top_logprobs), 3, f"chat token {i}: number of top_logprobs")
        values = [a.logprob for a in t.top_logprobs]
        c.check(values == sorted(values, reverse=True) and values[0] <= 0, f"chat token {i}: top_logprobs {values}")
        c.equal(t.logprob, t.top_logprobs[0].logprob, f"chat token {i}: a greedy token is its most likely one")
        c.equal(t.token, bytes(t.bytes).decode("utf-8", "replace"), f"chat token {i}: token vs bytes")
    chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=steps, temperature=0,
                                                 logprobs=True, top_logprobs=3, stream=True))
    streamed = [t for chunk in chunks if chunk.choices and chunk.choices[0].logprobs
                for t in chunk.choices[0].logprobs.content]
    c.equal([t.model_dump() for t in streamed], [t.model_dump() for t in content], "chat logprobs streamed vs not")
    plain = client.chat.completions.create(model=model, messages=messages, max_tokens=steps, temperature=0)
    c.check(plain.choices[0].logprobs is None, "logprobs sent without being asked for")
    c.equal(plain.choices[0].message.content, r.choices[0].message.content, "the text with logprobs vs without")
    client.close()


def check_prompt_cache(c, server):
    client = server.client()
    model = server.model_id
    prefix = [(37 * i + 11) % 500 for i in range(120)]
    first_prompt, second_prompt = prefix + [3, 141, 59, 26, 5], prefix + [27, 182, 81, 8]

    def run(prompt):
        return client.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=0, logprobs=2,
                                         extra_body={"ignore_eos": True})

    def cached(r):
        details = r.usage.prompt_tokens_details
        return details.cached_tokens if details is not None else None

    before = metric_sum(server.metrics(), "qwen_prompt_cache_tokens_total")
    first = run(first_prompt)
    c.equal(cached(first), 0, "a new prompt: cached_tokens")
    second = run(second_prompt)
    c.equal(cached(second), len(prefix), "a prompt sharing the 120-token prefix: cached_tokens")
    again = run(first_prompt)
    c.equal(cached(again), len(first_prompt) - 3, "the first prompt again: cached_tokens (all but the last 3 tokens)")
    c.equal(again.choices[0].text, first.choices[0].text, "the first prompt again: text")
    c.equal(again.choices[0].logprobs.model_dump(), first.choices[0].logprobs.model_dump(),
            "the first prompt again: log probabilities bit for bit")
    reused = metric_sum(server.metrics(), "qwen_prompt_cache_tokens_total") - before
    c.equal(reused, len(prefix) + len(first_prompt) - 3, "qwen_prompt_cache_tokens_total counts the reused tokens")
    client.close()


def check_json_mode(c, server):
    client = server.client()
    model = server.model_id
    json_format = {"type": "json_object"}
    finished = 0
    for i, prompt in enumerate(PROMPTS[:4]):
        messages = [{"role": "user", "content": f"{prompt} Answer in JSON."}]
        extra = {"temperature": 0} if i % 2 == 0 else {"temperature": 0.9, "seed": i}
        r = client.chat.completions.create(model=model, messages=messages, max_tokens=160, response_format=json_format, **extra)
        choice = r.choices[0]
        c.check(choice.finish_reason in ("stop", "length"), f"json mode: finish_reason {choice.finish_reason!r}")
        if choice.finish_reason == "stop":
            finished += 1
            try:
                value = json.loads(choice.message.content)
            except ValueError as e:
                c.fail(f"json mode, prompt {i}: not JSON ({e}): {short(choice.message.content)}")
            c.check(isinstance(value, dict), f"json mode, prompt {i}: not an object: {short(choice.message.content)}")
        if i == 0:
            streamed = Stream(server.port, "/v1/chat/completions", chat_payload(
                model, messages[0]["content"], 160, stream=True, response_format=json_format, **extra)).read_all()
            c.check(streamed.done and not streamed.problems, f"json mode stream: done {streamed.done}, {streamed.problems}")
            c.equal(streamed.text, choice.message.content, "json mode: streamed vs not")
    note(f"json mode: {finished} of 4 answers closed their object within 160 tokens")
    c.check(finished >= 1, "json mode: no answer closed its object within 160 tokens")
    expect_raw_error(c, "response_format of an unknown type", request(server.port, "POST", "/v1/chat/completions",
                     body={"messages": [{"role": "user", "content": "Hi"}], "response_format": {"type": "yaml"}}),
                     400, "invalid_request_error")
    client.close()


CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"}, "population": {"type": "integer"}, "area_km2": {"type": "number"},
        "capital": {"type": "boolean"}, "continent": {"enum": ["Africa", "Asia", "Europe", "North America",
                                                               "South America", "Oceania"]},
        "landmarks": {"type": "array", "items": {"type": "string"}},
        "mayor": {"type": "object", "properties": {"name": {"type": "string"}, "since": {"type": "integer"}},
                  "required": ["name", "since"], "additionalProperties": False},
    },
    "required": ["city", "population", "area_km2", "capital", "continent", "landmarks", "mayor"],
    "additionalProperties": False,
}


def follows_city_schema(value):
    """Hand-written check of CITY_SCHEMA (no schema library in the venv): '' or what is wrong."""
    if not isinstance(value, dict) or list(value) != list(CITY_SCHEMA["properties"]):
        return f"keys {list(value) if isinstance(value, dict) else type(value).__name__}"
    checks = {"city": lambda v: isinstance(v, str), "population": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "area_km2": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "capital": lambda v: isinstance(v, bool), "continent": lambda v: v in CITY_SCHEMA["properties"]["continent"]["enum"],
              "landmarks": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              "mayor": lambda v: isinstance(v, dict) and list(v) == ["name", "since"] and isinstance(v["name"], str)
              and isinstance(v["since"], int) and not isinstance(v["since"], bool)}
    for key, check in checks.items():
        if not check(value[key]):
            return f"{key} = {value[key]!r}"
    return ""


def check_schema(c, server):
    client = server.client()
    model = server.model_id
    user = [{"role": "user", "content": "Describe Paris."}]
    for schema, what in (({"type": "object", "properties": {"a": {"anyOf": [
                              {"type": "object", "properties": {"v": {"type": "integer"}}},
                              {"type": "object", "properties": {"v": {"type": "number"}}}]}}},
                          "a union whose branches part at an integer and a number"),
                         ({"type": "object", "properties": {"a": {"oneOf": [{"type": "object", "properties": {}},
                                                                          {"type": "object"}]}}},
                          "a oneOf whose branches overlap"),
                         ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "maxItems": 1000}}},
                          "an item count over 64"),
                         ({"type": "object", "properties": {"a": {"type": ["string", "nothing"]}}}, "an unknown type in a list"),
                         ({"type": "array", "items": {"type": "string"}}, "an array root"),
                         ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)"}}}, "a lookahead pattern"),
                         ({"type": "object", "properties": {"a": {"type": "string", "format": "idn-hostname"}}}, "the idn-hostname format"),
                         ({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 1e-12}}},
                          "a multipleOf below 10^-9")):
        expect_api_error(c, f"json_schema with {what}", openai.BadRequestError, 400, lambda: client.chat.completions.create(
            model=model, messages=user, max_tokens=4,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}),
            "invalid_request_error", code="unsupported_parameter")
    expect_raw_error(c, "json_schema without a schema", request(server.port, "POST", "/v1/chat/completions",
                     body={"messages": user, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
                     400, "invalid_request_error")
    fmt = {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": CITY_SCHEMA}}
    finished = 0
    for extra in ({"temperature": 0}, {"temperature": 0.8, "seed": 1}, {"temperature": 0.8, "seed": 2}):
        r = client.chat.completions.create(model=model, messages=user, max_tokens=240, response_format=fmt, **extra)
        choice = r.choices[0]
        if choice.finish_reason != "stop":
            continue
        finished += 1
        try:
            value = json.loads(choice.message.content)
        except ValueError as e:
            c.fail(f"json_schema {extra}: not JSON ({e}): {short(choice.message.content)}")
        problem = follows_city_schema(value)
        c.check(problem == "", f"json_schema {extra}: does not follow the schema ({problem}): {short(choice.message.content)}")
    note(f"json_schema: {finished} of 3 answers finished within 240 tokens")
    if (context_length(server.model) or 0) >= 1024:   # a real model, not the tiny fixture's noise
        c.check(finished >= 1, "json_schema: no answer finished within 240 tokens")
        # The official client's structured outputs: a Pydantic model (its strict schema has a
        # nested model through $defs/$ref and Optional as anyOf with null) parsed back by the SDK.
        import pydantic
        from typing import Optional

        class Address(pydantic.BaseModel):
            city: str
            zip: int

        class Person(pydantic.BaseModel):
            name: str
            age: Optional[int]
            home: Address
            hobbies: list[str]

        parsed = client.beta.chat.completions.parse(model=model, messages=[{"role": "user", "content": "Invent a person."}],
                                                    response_format=Person, temperature=0, max_tokens=200)
        c.equal(parsed.choices[0].finish_reason, "stop", "pydantic structured output: finish_reason")
        c.check(isinstance(parsed.choices[0].message.parsed, Person),
                f"pydantic structured output not parsed: {short(parsed.choices[0].message.content)}")
        note(f"pydantic structured output: {short(parsed.choices[0].message.content)}")

        # Lists of models, a dict, an Optional model and a union, each enforced by the pattern:
        # every finished answer is one the SDK's Pydantic validation accepts.
        class Item(pydantic.BaseModel):
            name: str
            quantity: int

        class Order(pydantic.BaseModel):
            items: list[Item]
            ship_to: Optional[Address]
            prices: dict[str, float]
            reference: int | str

        def parse_answers(model_class, prompt, max_tokens, seed):
            """A greedy and a seeded answer through the SDK's parse(): each finished one must be
            an instance of the model (Pydantic's validation in the SDK accepts it)."""
            name = model_class.__name__
            finished = 0
            for extra in ({"temperature": 0}, {"temperature": 0.7, "seed": seed}):
                r = client.beta.chat.completions.parse(model=model, messages=[{"role": "user", "content": prompt}],
                                                       response_format=model_class, max_tokens=max_tokens, **extra)
                choice = r.choices[0]
                if choice.finish_reason != "stop":
                    note(f"pydantic {name} {extra}: {choice.finish_reason} after {max_tokens} tokens")
                    continue
                finished += 1
                c.check(isinstance(choice.message.parsed, model_class),
                        f"pydantic {name} {extra} not parsed: {short(choice.message.content)}")
                note(f"pydantic {name} {extra}: {short(choice.message.content)}")
            c.check(finished >= 1, f"pydantic {name}: no answer finished within {max_tokens} tokens")

        parse_answers(Order, "Invent a small order of two items, shipped to Oslo.", 300, 3)

        # Constrained values: a pattern, lengths, formats (date-time, date, UUID) and integer
        # bounds, each enforced by the pattern, so Pydantic's validation in the SDK accepts them.
        from datetime import date, datetime
        from typing import Annotated
        from uuid import UUID

        class Booking(pydantic.BaseModel):
            code: Annotated[str, pydantic.Field(pattern=r"^[A-Z]{3}-[0-9]{4}$")]
            guest: Annotated[str, pydantic.Field(min_length=2, max_length=20)]
            when: datetime
            day: date
            party: Annotated[int, pydantic.Field(ge=1, le=8)]
            deposit: Annotated[float, pydantic.Field(ge=0, lt=500)]
            id: UUID

        parse_answers(Booking, "Book a table for four at 7pm on 12 March 2027.", 200, 4)

        # A duration, an IPv6 address, and multiples (exact on the integer, Pydantic's tolerance
        # on the float: the pattern writes decimal multiples).
        from datetime import timedelta
        from ipaddress import IPv6Address

        class Reminder(pydantic.BaseModel):
            every: timedelta
            snooze: Annotated[int, pydantic.Field(multiple_of=5, ge=5, le=60)]
            price: Annotated[float, pydantic.Field(multiple_of=0.01, ge=0)]
            host: IPv6Address
            link: pydantic.HttpUrl
            window: tuple[int, int]

        parse_answers(Reminder, "Every two hours, remind me to check the server at fe80::1 (snooze 10 minutes, costs 2.50, "
                      "docs at https://example.com/status).", 160, 5)

        # Unions of models that begin alike: an agent's next step as a discriminated union
        # (`oneOf` with a discriminator) and a plain union of two objects (`anyOf`), written as
        # one up to the byte where their branches part.
        from typing import Literal, Union

        class Search(pydantic.BaseModel):
            kind: Literal["search"]
            query: str

        class Answer(pydantic.BaseModel):
            kind: Literal["answer"]
            text: str

        class Metres(pydantic.BaseModel):
            value: float
            metres: bool

        class Words(pydantic.BaseModel):
            value: str

        class Step(pydantic.BaseModel):
            thought: str
            action: Annotated[Union[Search, Answer], pydantic.Field(discriminator="kind")]
            height: Union[Metres, Words]

        parse_answers(Step, "How tall is the Eiffel Tower? Think, then search or answer, and give its height.", 160, 6)

        # The email format (EmailStr would need email-validator in this venv: the schema as it
        # sends it, the answer checked for an address's shape).
        contact = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 40},
                                                    "email": {"type": "string", "format": "email"}},
                   "required": ["name", "email"], "additionalProperties": False}
        r = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "A contact card for Ada Lovelace at the Analytical Engine company."}],
            max_tokens=80, temperature=0,
            response_format={"type": "json_schema", "json_schema": {"name": "contact", "strict": True, "schema": contact}})
        content = r.choices[0].message.content
        if r.choices[0].finish_reason == "stop":
            email = json.loads(content)["email"]
            c.check(re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}", email) is not None,
                    f"email format: not an address: {short(content)}")
        else:
            c.fail(f"email format: {r.choices[0].finish_reason} after 80 tokens: {short(content)}")
        note(f"email format: {short(content)}")
    client.close()


FORCED_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "search_web", "description": "Search the web",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                     "required": ["query"]}}},
]


def check_forced_tools(c, server):
    client = server.client()
    model = server.model_id
    user = [{"role": "user", "content": "Hello! How are you today?"}]
    bad = openai.BadRequestError
    expect_api_error(c, "tool_choice required without tools", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, tool_choice="required"), "invalid_request_error")
    expect_api_error(c, "tool_choice naming a function not in tools", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, tools=FORCED_TOOLS,
        tool_choice={"type": "function", "function": {"name": "nope"}}), "invalid_request_error")
    expect_raw_error(c, "tool_choice of a bad kind", request(server.port, "POST", "/v1/chat/completions",
                     body={"messages": user, "tools": FORCED_TOOLS, "tool_choice": 3}), 400, "invalid_request_error")
    expect_raw_error(c, "parallel_tool_calls not a boolean", request(server.port, "POST", "/v1/chat/completions",
                     body={"messages": user, "tools": FORCED_TOOLS, "tool_choice": "required", "parallel_tool_calls": "yes"}),
                     400, "invalid_request_error")
    probe = request(server.port, "POST", "/v1/chat/completions",
                    body={"messages": user, "tools": FORCED_TOOLS, "max_tokens": 1})
    if probe[0] == 400:
        note("the tools do not fit this model's context: forced calls not generated")
        client.close()
        return
    names = [t["function"]["name"] for t in FORCED_TOOLS]
    two_cities = [{"role": "user", "content": "What is the weather in Paris and in London?"}]
    for choice, allowed, messages, parallel in (
            ("required", names, user, False), ({"type": "function", "function": {"name": "search_web"}}, ["search_web"], user, False),
            ("required", names, user, None), ("required", names, two_cities, None)):
        extra = {} if parallel is None else {"parallel_tool_calls": parallel}
        r = client.chat.completions.create(model=model, messages=messages, max_tokens=160, temperature=0, tools=FORCED_TOOLS,
                                           tool_choice=choice, **extra)
        message = r.choices[0].message
        c.equal(r.choices[0].finish_reason, "tool_calls", f"tool_choice {choice}: finish_reason")
        calls = message.tool_calls or []
        if parallel is False:
            c.equal(len(calls), 1, f"tool_choice {choice}, parallel_tool_calls false: number of calls")
        elif messages is two_cities:
            # Parallel calls (OpenAI's default): the model asks for both cities.
            c.check(len(calls) >= 2, f"tool_choice {choice}, two cities: {len(calls)} calls")
        else:
            c.check(len(calls) >= 1, f"tool_choice {choice}: no call")
        for call in calls:
            c.check(call.function.name in allowed, f"tool_choice {choice}: called {call.function.name!r}")
            try:
                arguments = json.loads(call.function.arguments)
            except ValueError as e:
                c.fail(f"tool_choice {choice}: arguments are not JSON ({e}): {short(call.function.arguments)}")
            c.check(isinstance(arguments, dict), f"tool_choice {choice}: arguments not an object")
        note(f"tool_choice {choice} {extra}: " + "; ".join(f"{x.function.name}({x.function.arguments})" for x in calls))
        chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=160, temperature=0,
                                                     tools=FORCED_TOOLS, tool_choice=choice, stream=True, **extra))
        streamed = [tc for chunk in chunks if chunk.choices for tc in (chunk.choices[0].delta.tool_calls or [])]
        c.equal([(tc.function.name, tc.function.arguments) for tc in streamed],
                [(tc.function.name, tc.function.arguments) for tc in calls], f"tool_choice {choice}: streamed calls")
    client.close()


def check_infill(c, server):
    client = server.client()
    model = server.model_id
    prefix, suffix = "def fibonacci(n):\n    ", "\n    return fibonacci(n - 1) + fibonacci(n - 2)\n"
    expect_api_error(c, "suffix with a token-id prompt", openai.BadRequestError, 400, lambda: client.completions.create(
        model=model, prompt=[1, 2, 3], suffix="x", max_tokens=4), "invalid_request_error")
    with open(os.path.join(server.model, "tokenizer.json"), encoding="utf-8") as f:
        added = {t["content"]: t["id"] for t in json.load(f).get("added_tokens", [])}
    if not all(t in added for t in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")):
        expect_api_error(c, "suffix without fill-in-the-middle tokens", openai.BadRequestError, 400,
                         lambda: client.completions.create(model=model, prompt=prefix, suffix=suffix, max_tokens=4),
                         "invalid_request_error", code="unsupported_parameter", contains="fill-in-the-middle")
        client.close()
        return
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(server.model, "tokenizer.json"))
    ids = tokenizer.encode(f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>", add_special_tokens=False).ids
    steps = 24
    r = client.completions.create(model=model, prompt=prefix, suffix=suffix, max_tokens=steps, temperature=0)
    c.equal(r.usage.prompt_tokens, len(ids), "infill prompt tokens vs Hugging Face's tokenization")
    with open(os.path.join(server.model, "generation_config.json"), encoding="utf-8") as f:
        eos = json.load(f).get("eos_token_id")
    eos = set(eos if isinstance(eos, list) else [eos])
    reference = ReferenceRun(os.path.join(server.model, "onnx", "model_q4f16.onnx"))
    want = []
    for token, _ in reference.greedy(ids, steps):
        if token in eos:
            break
        want.append(token)
    c.equal(r.choices[0].text, tokenizer.decode(want, skip_special_tokens=True),
            "infill greedy text vs ONNX Runtime's greedy ids")
    note(f"infill: {short(r.choices[0].text)}")
    client.close()


def check_errors(c, server):
    client = server.client()
    model = server.model_id
    user = [{"role": "user", "content": "Hi"}]
    bad = openai.BadRequestError
    invalid = "invalid_request_error"

    expect_raw_error(c, "malformed JSON", request(server.port, "POST", "/v1/chat/completions",
                     body=b'{"model": "x", "messages": [', headers={"Content-Type": "application/json"}),
                     400, invalid)
    expect_raw_error(c, "JSON array body", request(server.port, "POST", "/v1/chat/completions", body=[1, 2]),
                     400, invalid)
    expect_api_error(c, "temperature -1", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, temperature=-1), invalid)
    expect_api_error(c, "n=17", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, n=17), invalid)
    expect_api_error(c, "empty messages", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=[], max_tokens=4), invalid)
    expect_api_error(c, "unknown role", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=[{"role": "wizard", "content": "Hi"}], max_tokens=4), invalid)
    expect_api_error(c, "top_logprobs without logprobs", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, top_logprobs=2), invalid)
    expect_api_error(c, "top_logprobs 21", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, logprobs=True, top_logprobs=21), invalid)
    expect_api_error(c, "completions logprobs 21", bad, 400, lambda: client.completions.create(
        model=model, prompt="Hi", max_tokens=4, logprobs=21), invalid)
    expect_api_error(c, "presence_penalty 3", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=user, max_tokens=4, presence_penalty=3), invalid)
    for legacy in ({"functions": [FORCED_TOOLS[0]["function"]]}, {"function_call": "auto"}):
        expect_api_error(c, f"deprecated {next(iter(legacy))}", bad, 400, lambda legacy=legacy: client.chat.completions.create(
            model=model, messages=user, max_tokens=4, extra_body=legacy), invalid)
    for what, bias in (("logit_bias 101", {"5": 101}), ("logit_bias of a word", {"five": 1}),
                       ("logit_bias of a negative id", {"-5": 1}), ("logit_bias of an id past the vocabulary", {"99999999": 1}),
                       ("logit_bias not an object", [1, 2])):
        expect_api_error(c, what, bad, 400, lambda bias=bias: client.chat.completions.create(
            model=model, messages=user, max_tokens=4, logit_bias=bias), invalid)
    expect_api_error(c, "completions temperature -1", bad, 400, lambda: client.completions.create(
        model=model, prompt="Hi", max_tokens=4, temperature=-1), invalid)
    expect_api_error(c, "chat prompt over the context", bad, 400, lambda: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": OVERLONG_TEXT}], max_tokens=4),
        code="context_length_exceeded", contains="context")
    expect_api_error(c, "completions prompt over the context", bad, 400, lambda: client.completions.create(
        model=model, prompt=OVERLONG_TEXT, max_tokens=4), code="context_length_exceeded", contains="context")

    expect_api_error(c, "unknown model (chat)", openai.NotFoundError, 404, lambda: client.chat.completions.create(
        model="no-such-model", messages=user, max_tokens=4), code="model_not_found")
    expect_api_error(c, "unknown model (completions)", openai.NotFoundError, 404, lambda: client.completions.create(
        model="no-such-model", prompt="Hi", max_tokens=4), code="model_not_found")
    expect_raw_error(c, "GET unknown route", request(server.port, "GET", "/v1/no-such-route"), 404)
    expect_raw_error(c, "POST unknown route", request(server.port, "POST", "/v1/no-such-route", body={}), 404)

    huge = [{"role": "user", "content": "a" * (MAX_BODY_BYTES + 4096)}]
    expect_api_error(c, "body over --max-body-bytes (client)", openai.APIStatusError, 413,
                     lambda: client.chat.completions.create(model=model, messages=huge, max_tokens=4))
    expect_raw_error(c, "body over --max-body-bytes (raw)", request(server.port, "POST", "/v1/chat/completions",
                     body={"model": model, "messages": huge, "max_tokens": 4}), 413)

    # A request head over the server's header limit (64 KB): refused (400, or 431), connection closed.
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * (100 * 1024) + b"\r\n\r\n")
        head = sock.recv(200).decode("latin-1")
    except OSError as e:
        head = f"connection error: {e}"
    finally:
        sock.close()
    c.check(head.startswith("HTTP/1.1 400") or head.startswith("HTTP/1.1 431"),
            f"a 100 KB header is refused with 400 or 431, got {head[:60]!r}")

    # The server still works after all that.
    r = greedy_chat(client, model, "Hi", 4)
    c.check(r.choices[0].finish_reason in ("stop", "length"), "a request after the errors")
    client.close()


def check_concurrency(c, server):
    def one(request, barrier):
        prompt, extra = request
        with server.client() as client:
            barrier.wait(timeout=60)
            return client.chat.completions.create(model=server.model_id, max_tokens=24,
                                                  messages=[{"role": "user", "content": prompt}],
                                                  **extra).choices[0].message.content

    for label, make in (("greedy", lambda i: {"temperature": 0}),
                        ("seeded", lambda i: {"temperature": 0.8, "seed": 1000 + i})):
        requests = [(prompt, make(i)) for i, prompt in enumerate(PROMPTS)]
        solo = [one(request, threading.Barrier(1)) for request in requests]
        barrier = threading.Barrier(len(requests))
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            together = list(pool.map(lambda request: one(request, barrier), requests))
        for i, (alone, batched) in enumerate(zip(solo, together)):
            c.equal(batched, alone, f"{label} prompt {i} run with {len(requests) - 1} others vs alone")


def check_disconnect(c, server):
    client = server.client()
    messages = [{"role": "user", "content": PROMPTS[3]}]
    max_tokens = long_max_tokens(server, client, messages)
    full = greedy_chat(client, server.model_id, messages, max_tokens)
    before = metric_sum(server.metrics(), "qwen_generated_tokens_total")
    stream = Stream(server.port, "/v1/chat/completions",
                    chat_payload(server.model_id, messages, max_tokens, stream=True, temperature=0))
    c.equal(stream.status, 200, "stream status")
    for _ in range(2):
        c.check(stream.next_chunk() not in (None, "[DONE]"), "the stream ended before 2 chunks")
    stream.disconnect()
    active = wait_for_metric(server, "qwen_active_sequences", 0, timeout=5)
    c.equal(active, 0, "qwen_active_sequences 5 s after the client disconnected")
    generated = metric_sum(server.metrics(), "qwen_generated_tokens_total") - before
    if generated >= full.usage.completion_tokens:
        note(f"the generation ({full.usage.completion_tokens} tokens) finished before the server noticed the"
             f" disconnect; cancellation itself was not exercised")
    else:
        note(f"generation cancelled after {generated:.0f} of {full.usage.completion_tokens} tokens")
    r = greedy_chat(client, server.model_id, "Hi", 4)
    c.check(r.choices[0].finish_reason in ("stop", "length"), "a request after the disconnect")
    client.close()


def check_load(c, server, load_requests):
    prompts = PROMPTS[:4]
    with server.client() as client:
        solo = [greedy_chat(client, server.model_id, p, 32).choices[0].message.content for p in prompts]

    def one(i):
        try:
            return i, Stream(server.port, "/v1/chat/completions",
                             chat_payload(server.model_id, prompts[i % 4], 32, stream=True, temperature=0)).read_all()
        except Exception as e:
            return i, e

    rss = []
    for round_number in (1, 2):
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
            results = list(pool.map(one, range(load_requests)))
        elapsed = time.monotonic() - start
        bad = []
        for i, s in results:
            if isinstance(s, Exception):
                bad.append(f"request {i}: {type(s).__name__}: {s}")
            elif s.status != 200:
                bad.append(f"request {i}: status {s.status}")
            elif not s.done or s.problems:
                bad.append(f"request {i}: [DONE] {s.done}, problems {s.problems}")
            elif s.text != solo[i % 4] or len(s.finish_reasons) != 1:
                bad.append(f"request {i}: text {short(s.text)} (finish_reasons {s.finish_reasons}),"
                           f" alone {short(solo[i % 4])}")
        c.check(not bad, f"round {round_number}: {len(bad)} of {load_requests} requests wrong:\n"
                         + indent("\n".join(bad[:5])))
        c.equal(wait_for_metric(server, "qwen_active_sequences", 0, timeout=2), 0, "qwen_active_sequences after load")
        c.equal(metric_sum(server.metrics(), "qwen_queue_depth"), 0, "qwen_queue_depth after load")
        time.sleep(0.5)
        rss.append(server.rss_bytes())
        note(f"round {round_number}: {load_requests} requests from {LOAD_CLIENTS} clients in {elapsed:.1f} s,"
             f" server RSS {rss[-1] / 2**20:.1f} MB")
    c.check(rss[1] <= rss[0] * 1.10 + 8 * 2**20,
            f"server RSS grew from {rss[0] / 2**20:.1f} MB to {rss[1] / 2**20:.1f} MB over the second identical round")


def check_sigterm(c, server):
    messages = [{"role": "user", "content": PROMPTS[5]}]
    with server.client() as client:
        max_tokens = long_max_tokens(server, client, messages)
        want = greedy_chat(client, server.model_id, messages, max_tokens).choices[0].message.content
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # an idle keep-alive connection
    idle.request("GET", "/health")
    idle_reply = idle.getresponse()
    idle_reply.read()
    stream = Stream(server.port, "/v1/chat/completions",
                    chat_payload(server.model_id, messages, max_tokens, stream=True, temperature=0))
    c.equal(stream.status, 200, "stream status")
    c.check(stream.next_chunk() not in (None, "[DONE]"), "the stream ended before its first chunk")
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    stream.read_all()
    c.check(stream.done, f"the in-flight stream did not end with [DONE] after SIGTERM ({len(stream.chunks)} chunks)")
    c.equal(stream.problems, [], "stream problems after SIGTERM")
    c.equal(stream.text, want, "text of the stream in flight at SIGTERM")
    try:
        code = server.proc.wait(timeout=max(0.1, 10 - (time.monotonic() - signalled)))
    except subprocess.TimeoutExpired:
        c.fail("the server did not exit within 10 s of SIGTERM (an idle keep-alive connection was open)")
    finally:
        idle.close()
    c.equal(code, 0, "exit status after SIGTERM")


# --- checks on servers with other settings -------------------------------------------------------

def check_api_key(c, server):
    status, _, body = request(server.port, "GET", "/health")
    c.equal(status, 200, "GET /health without a key")
    user = [{"role": "user", "content": "Hi"}]
    auth = "authentication_error"
    expect_raw_error(c, "no Authorization header", request(server.port, "POST", "/v1/chat/completions",
                     body=chat_payload(server.model_id, user, 4)), 401, auth)
    expect_raw_error(c, "Authorization without Bearer", request(server.port, "POST", "/v1/chat/completions",
                     body=chat_payload(server.model_id, user, 4), headers={"Authorization": API_KEY}), 401, auth)
    with server.client(api_key="wrong-key") as wrong:
        expect_api_error(c, "wrong key (chat)", openai.AuthenticationError, 401, lambda: wrong.chat.completions.create(
            model=server.model_id, messages=user, max_tokens=4), auth)
        expect_api_error(c, "wrong key (models)", openai.AuthenticationError, 401, lambda: wrong.models.list(), auth)
    with server.client(api_key=API_KEY) as right:
        ids = [m.id for m in right.models.list()]
        c.check(server.model_id in ids, f"models with the key: {ids}")
        r = greedy_chat(right, server.model_id, user, 4)
        c.check(r.choices[0].finish_reason in ("stop", "length"), "chat with the key")


def check_rate_limit(c, server):
    """--max-queue 0 --max-batch 1: a request arriving while another runs gets 429. The tiny
    model may finish the running one first, so try a few times."""
    messages = [{"role": "user", "content": PROMPTS[3]}]
    with server.client() as client:
        max_tokens = long_max_tokens(server, client, messages)
        error = None
        for attempt in range(20):
            running = open_when_free(server, chat_payload(server.model_id, messages, max_tokens, stream=True,
                                                          temperature=0))
            c.equal(running.status, 200, "the running request's status")
            c.check(running.next_chunk() not in (None, "[DONE]"), "the running stream ended before its first chunk")
            try:
                client.chat.completions.create(model=server.model_id, messages=messages, max_tokens=4, temperature=0)
            except openai.RateLimitError as e:
                error = e
            running.read_all()
            c.check(running.done and not running.problems,
                    f"the running request: [DONE] {running.done}, problems {running.problems}")
            if error:
                break
        c.check(error is not None, "no 429 in 20 tries of a request sent while another was streaming")
        c.equal(error.status_code, 429, "status")
        check_error_object(c, "queue full", error.body, "rate_limit_error", None, None)
        if attempt:
            note(f"429 on try {attempt + 1}")
        final = open_when_free(server, chat_payload(server.model_id, messages, 4, stream=True, temperature=0))
        c.equal(final.status, 200, "a request once the server is idle again")
        final.read_all()
        c.check(final.done, "a request once the server is idle again: no [DONE]")


def open_when_free(server, payload, timeout=5):
    """A stream on a --max-batch 1 --max-queue 0 server: the previous request's slot may be freed
    a moment after its [DONE], so a 429 is retried for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        stream = Stream(server.port, "/v1/chat/completions", payload)
        if stream.status != 429 or time.monotonic() > deadline:
            return stream
        stream.body()
        stream.close()
        time.sleep(0.05)


# --- reasoning models ------------------------------------------------------------------------------

# A DeepSeek-R1-style chat template (the distillations' own, shortened): earlier answers lose their
# reasoning, and the generation prompt opens a think block.
THINKING_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{ '<｜Assistant｜>' + content + '<|endoftext|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}")


def thinking_model(model, directory):
    """A copy of `model` whose chat template is THINKING_TEMPLATE."""
    os.makedirs(directory)
    for name in os.listdir(model):
        source = os.path.join(model, name)
        if name == "tokenizer_config.json":
            with open(source) as f:
                config = json.load(f)
            config["chat_template"] = THINKING_TEMPLATE
            with open(os.path.join(directory, name), "w") as f:
                json.dump(config, f)
        elif name == "onnx":
            shutil.copytree(source, os.path.join(directory, name))
        elif name.endswith(".json") and name != "manifest.json":
            shutil.copy(source, directory)
    return directory


def split_reasoning(text, opened):
    """The split the server's `reasoning_content` follows, written here from its definition: the
    block's text (from the prompt's opening or a leading <think>, to the first </think>, or to
    the end) trimmed, and what follows the block without leading whitespace; no block: (None, text)."""
    rest = text
    if not opened:
        start = text.lstrip()
        if not start.startswith("<think>"):
            return None, text
        rest = start[len("<think>"):]
    reasoning, closed, answer = rest.partition("</think>")
    return reasoning.strip(), answer.lstrip() if closed else ""


def check_reasoning(c, server):
    """A model whose chat template opens a think block (DeepSeek-R1's distillations): the block is
    `reasoning_content`, the rest `content`, as the raw text (`reasoning_format` "none") splits;
    streamed as reasoning_content deltas, then content deltas, adding up to the same; not split
    under a response_format; an earlier answer's reasoning_content accepted; a bad
    reasoning_format 400."""
    client = server.client()
    for i, prompt in enumerate(PROMPTS[:3]):
        messages = [{"role": "user", "content": prompt}]
        raw = greedy_chat(client, server.model_id, messages, 24, extra_body={"reasoning_format": "none"})
        raw_text = raw.choices[0].message.content
        c.check(getattr(raw.choices[0].message, "reasoning_content", None) is None,
                f"prompt {i}: reasoning_format none still gave reasoning_content")
        want_reasoning, want_content = split_reasoning(raw_text, opened=True)
        r = greedy_chat(client, server.model_id, messages, 24)
        message = r.choices[0].message
        c.equal(getattr(message, "reasoning_content", None), want_reasoning, f"prompt {i}: reasoning_content")
        c.equal(message.content, want_content, f"prompt {i}: content")
        c.equal(r.choices[0].finish_reason, raw.choices[0].finish_reason, f"prompt {i}: finish_reason")
        c.equal(r.usage.completion_tokens, raw.usage.completion_tokens, f"prompt {i}: completion tokens")

        chunks = list(client.chat.completions.create(model=server.model_id, messages=messages, max_tokens=24,
                                                     temperature=0, stream=True))
        deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
        streamed_reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        streamed_content = "".join(d.content or "" for d in deltas)
        c.equal(streamed_reasoning, want_reasoning, f"prompt {i}: streamed reasoning_content")
        c.equal(streamed_content, want_content, f"prompt {i}: streamed content")
        kinds = ["reasoning" if getattr(d, "reasoning_content", None) else "content" for d in deltas
                 if getattr(d, "reasoning_content", None) or d.content]
        c.check(kinds == sorted(kinds, key=lambda k: k == "content"),
                f"prompt {i}: content delta before a reasoning delta: {kinds}")

    json_answer = client.chat.completions.create(model=server.model_id, messages=[{"role": "user", "content": "json"}],
                                                 max_tokens=8, temperature=0, response_format={"type": "json_object"})
    c.check(getattr(json_answer.choices[0].message, "reasoning_content", None) is None,
            "response_format json_object: the constrained answer was split as reasoning")
    history = [{"role": "user", "content": "2+2?"},
               {"role": "assistant", "content": "4", "reasoning_content": "2 and 2 make 4."},
               {"role": "user", "content": "and 3+3?"}]
    again = client.chat.completions.create(model=server.model_id, messages=history, max_tokens=2, temperature=0)
    c.check(again.choices[0].finish_reason in ("stop", "length"), "a conversation with an earlier reasoning_content")
    expect_api_error(c, "reasoning_format deepseek", openai.BadRequestError, 400,
                     lambda: client.chat.completions.create(model=server.model_id, messages=history, max_tokens=2,
                                                            extra_body={"reasoning_format": "deepseek"}),
                     type_="invalid_request_error")
    client.close()


# --- main ----------------------------------------------------------------------------------------

def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_idle(c, server, seconds=5.0):
    """After the load, an idle server sleeps: its kernel threads stop spinning ~2 ms after their
    last loop and the scheduler waits on a condition, so 5 s idle cost under 1% of one core."""
    time.sleep(1.0)
    start = cpu_seconds(server.proc.pid)
    time.sleep(seconds)
    used = cpu_seconds(server.proc.pid) - start
    note(f"idle: {used:.3f} CPU seconds in {seconds:.0f} s")
    c.check(used < 0.01 * seconds, f"idle server used {used:.3f} CPU seconds in {seconds:.0f} s (limit {0.01 * seconds:.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qwen-run", default=None, help="the qwen-run binary (default .build-test/release/qwen-run)")
    parser.add_argument("--model", default=None, help="model directory (default Models/fixtures/tiny-qwen2)")
    parser.add_argument("--load-requests", type=int, default=64, help="requests per load round (default 64)")
    parser.add_argument("--keep-going", action="store_true", help="run every check group despite failures")
    parser.add_argument("--groups", default=None,
                        help="comma-separated check groups of the main server to run (default: all, and the"
                             " servers for logprobs, 401 and 429)")
    args = parser.parse_args()
    qwen_run = os.path.abspath(args.qwen_run) if args.qwen_run else DEFAULT_QWEN_RUN
    model = os.path.abspath(args.model) if args.model else DEFAULT_MODEL
    if args.load_requests < 1:
        parser.error("--load-requests must be ≥ 1")
    if not (os.path.isfile(qwen_run) and os.access(qwen_run, os.X_OK)):
        sys.exit(f"test_server: error: no executable qwen-run at {qwen_run}"
                 f" (scripts/test builds .build-test/release/qwen-run; or pass --qwen-run)")
    if not os.path.isdir(model):
        sys.exit(f"test_server: error: no model directory {model}")

    global openai
    try:
        import openai
    except ImportError:
        sys.exit("test_server: error: the openai package is missing: .venv/bin/pip install -r scripts/requirements.txt")

    log_dir = tempfile.mkdtemp(prefix="test_server-")
    checks = Checks(args.keep_going)
    servers = []

    def start(name, extra, model_dir=model):
        server = Server(qwen_run, model_dir, log_dir, name, extra)
        servers.append(server)
        print(f"--    {server.describe()}", flush=True)
        return server.start()

    try:
        main_server = start("main", ["--max-batch", "8", "--max-queue", "256",
                                     "--max-body-bytes", str(MAX_BODY_BYTES), "--request-timeout", "600"])
        groups = [
            ("health and metrics", check_health_and_metrics),
            ("models", check_models),
            ("chat", check_chat),
            ("chat stream", check_chat_stream),
            ("completions", check_completions),
            ("cache", check_prompt_cache),
            ("json", check_json_mode),
            ("schema", check_schema),
            ("tools", check_forced_tools),
            ("infill", check_infill),
            ("stop strings", check_stop),
            ("seeded sampling", check_seeded),
            ("choices (n)", check_choices),
            ("prompts", check_prompts),
            ("request counting", check_request_counting),
            ("errors 400/404/413", check_errors),
            ("concurrency", check_concurrency),
            ("disconnect", check_disconnect),
            ("load", check_load, args.load_requests),
            ("idle", check_idle),
            ("sigterm", check_sigterm),
        ]
        wanted = set(args.groups.split(",")) if args.groups else None
        if wanted and wanted - {name for name, *_ in groups}:
            raise SetupError(f"unknown check groups {sorted(wanted - {name for name, *_ in groups})}")
        for name, function, *extra in groups:
            if wanted and name not in wanted:
                continue
            if not main_server.running():
                checks.failed.append(name)
                print(f"FAIL  {name}: the server is not running (exit status {main_server.proc.returncode})")
                if not args.keep_going:
                    break
                continue
            if not checks.run(name, function, main_server, *extra):
                break
        main_server.stop()

        if (not checks.failed or args.keep_going) and not wanted:
            fp32_server = start("fp32", ["--dtype", "fp32"])
            checks.run("logprobs and penalties", check_logprobs, fp32_server)
            fp32_server.stop()
        if (not checks.failed or args.keep_going) and not wanted:
            auth_server = start("auth", ["--api-key", API_KEY])
            if checks.run("errors 401", check_api_key, auth_server):
                auth_server.stop()
                queue_server = start("queue", ["--max-queue", "0", "--max-batch", "1", "--request-timeout", "600"])
                checks.run("errors 429", check_rate_limit, queue_server)
                queue_server.stop()
        if (not checks.failed or args.keep_going) and not wanted:
            thinking = start("thinking", [], thinking_model(model, os.path.join(log_dir, "thinking-model")))
            checks.run("reasoning", check_reasoning, thinking)
    except SetupError as e:
        checks.failed.append("server start")
        print(f"FAIL  server start: {e}", flush=True)
    except KeyboardInterrupt:
        checks.failed.append("interrupted")
        print("test_server: interrupted", flush=True)
    finally:
        for server in servers:
            server.stop()

    if checks.failed:
        print(f"test_server: {checks.passed} checks passed, {len(checks.failed)} failed"
              f" ({', '.join(checks.failed)}); server logs in {log_dir}")
        sys.exit(1)
    shutil.rmtree(log_dir, ignore_errors=True)
    print(f"test_server: {checks.passed} checks passed")


if __name__ == "__main__":
    main()
