#!/usr/bin/python3
"""Conformance test: drive a real kefu broker with a client written from schemas/PROTOCOL.md alone.

usage: python3 run.py BUILD_DIR SOURCE_DIR

Exit status: 0 all checks passed, 1 some failed, 77 skipped (pyzmq or msgpack missing).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import zmq  # noqa: F401
    import msgpack  # noqa: F401
except ImportError as e:
    print("conformance: skipped (%s; install python3-zmq and python3-msgpack)" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kefu_client import (KefuClient, KefuError, KefuTimeout, new_id, pack,  # noqa: E402
                         unpack, SIGNATURE)

PACE_MS = 30            # local workers' delay between streamed tokens
STREAM_WAIT_MS = 500    # broker hold for a stream's first subscriber (3.2)
IDLE_TIMEOUT_MS = 800   # chat deadline of the second, worker-less broker (8.5)
TOTAL_BUDGET_S = 58

RESULT_FIELDS = {
    "session_id": str, "message_id": int, "turn_count": int, "failed_attempts": int,
    "latency_ms": int, "reply": str, "response_type": str, "intent": str, "confidence": float,
    "sources": list, "suggestions": list, "escalate_to_human": bool, "usage": dict,
    "cached": bool,
}
MESSAGE_FIELDS = {
    "id": int, "session_id": str, "role": str, "content": str, "response_type": str,
    "status": str, "usage": dict, "created_at": int,
}
RESPONSE_TYPES = {"text", "style_text", "image_text", "template_card", "form_show"}  # 12.4
INTENTS = {"knowledge_qa", "chitchat", "transfer_to_human", "business_query", "emotion_sensitive",
           "ticket"}
SESSION_RE = re.compile(r"^s_[0-9a-f]{20}$")

passed = 0
failed = 0


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def is_int(v):
    return type(v) is int


def has_type(v, t):
    if t is int:
        return type(v) is int
    if t is bool:
        return type(v) is bool
    return isinstance(v, t)


def check_fields(obj, spec, where):
    expect(isinstance(obj, dict), "%s is not a map: %r" % (where, obj))
    for k, t in spec.items():
        expect(k in obj, "%s lacks %r" % (where, k))
        expect(has_type(obj[k], t), "%s.%s is %r, want %s" % (where, k, obj[k], t.__name__))


def check_usage(u, where):
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        expect(is_int(u.get(k)), "%s.usage.%s is %r" % (where, k, u.get(k)))


def check_source(s, where):
    check_fields(s, {"id": int, "question": str, "category": str, "score": float}, where)
    expect("external_id" in s and (s["external_id"] is None or isinstance(s["external_id"], str)),
           "%s.external_id is %r" % (where, s.get("external_id")))
    expect(0.0 <= s["score"] <= 1.0, "%s.score out of range" % where)


def check_chat_result(r, where, streamed):
    check_fields(r, RESULT_FIELDS, where)
    expect(SESSION_RE.match(r["session_id"]), "%s.session_id %r not s_+20 hex" % (where, r["session_id"]))
    expect(r["intent"] in INTENTS, "%s.intent %r unknown" % (where, r["intent"]))
    expect(r["response_type"] in RESPONSE_TYPES, "%s.response_type %r" % (where, r["response_type"]))
    expect("response_content" in r, "%s lacks response_content" % where)
    if r["response_type"] == "text":
        expect(r["response_content"] is None, "%s: text answer with content %r"
               % (where, r["response_content"]))
    else:
        expect(isinstance(r["response_content"], dict), "%s: %s answer without content"
               % (where, r["response_type"]))
    expect(0.0 <= r["confidence"] <= 1.0, "%s.confidence out of range" % where)
    expect(len(r["sources"]) <= 1, "%s: more than 1 source" % where)
    for i, s in enumerate(r["sources"]):
        check_source(s, "%s.sources[%d]" % (where, i))
    expect(len(r["suggestions"]) <= 3 and all(isinstance(s, str) for s in r["suggestions"]),
           "%s.suggestions %r" % (where, r["suggestions"]))
    check_usage(r["usage"], where)
    if streamed:
        expect(is_int(r.get("last_seq")), "%s.last_seq missing/not int: %r" % (where, r.get("last_seq")))
    else:
        expect("last_seq" not in r, "%s has last_seq although not streamed" % where)


def check_error(e, code, name, where):
    expect(isinstance(e, KefuError), "%s: no error raised" % where)
    expect(e.name == name and e.code == code,
           "%s: got %s %s (%s), want %s %s" % (where, e.code, e.name, e.message, code, name))
    expect(isinstance(e.message, str) and e.message, "%s: message %r" % (where, e.message))


def expect_error(fn, code, name, where):
    try:
        r = fn()
    except KefuError as e:
        check_error(e, code, name, where)
        return e
    raise CheckFailed("%s: succeeded with %r, want %s %s" % (where, r, code, name))


def check_error_reply(r, code, name, rid, where):
    """A raw error reply map: exactly id/ok/error; error has code/name/message (no retry)."""
    expect(isinstance(r, dict) and set(r) == {"id", "ok", "error"}, "%s: reply keys %r" % (where, r))
    expect(r["ok"] is False, "%s: ok is %r" % (where, r["ok"]))
    expect(r["id"] == rid, "%s: reply id %r, want %r" % (where, r["id"], rid))
    err = r["error"]
    expect(set(err) == {"code", "name", "message"}, "%s: error keys %r" % (where, sorted(err)))
    expect(err["code"] == code and err["name"] == name,
           "%s: got %s %s (%s), want %s %s" % (where, err["code"], err["name"], err["message"], code, name))


def run_check(name, fn):
    global passed, failed
    t0 = time.monotonic()
    try:
        note = fn()
        passed += 1
        print("ok    %-40s %5.2fs%s" % (name, time.monotonic() - t0, ("  " + note) if note else ""),
              flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported as a failed check
        failed += 1
        if isinstance(e, CheckFailed):
            why = str(e)
        else:
            why = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc())
        print("FAIL  %-40s %5.2fs  %s" % (name, time.monotonic() - t0, why), flush=True)


def recv_raw_reply(sock, timeout_s=5.0):
    if not sock.poll(int(timeout_s * 1000)):
        raise CheckFailed("no reply within %.0f s" % timeout_s)
    frames = sock.recv_multipart()
    expect(len(frames) == 2 and frames[0] == SIGNATURE, "reply frames %r" % (frames,))
    return unpack(frames[1])


class Alarm(BaseException):
    pass


def on_alarm(signum, frame):
    raise Alarm("conformance run exceeded %d s" % TOTAL_BUDGET_S)


def main():
    if len(sys.argv) != 3:
        print("usage: run.py BUILD_DIR SOURCE_DIR", file=sys.stderr)
        return 2
    build_dir, source_dir = sys.argv[1], sys.argv[2]
    broker_bin = os.path.join(build_dir, "kefu-broker")
    kb_path = os.path.join(source_dir, "deploy", "sample-kb.jsonl")
    if not os.access(broker_bin, os.X_OK):
        print("conformance: %s not built" % broker_bin)
        print("conformance: 0 passed, 1 failed")
        return 1

    tmp = tempfile.mkdtemp(prefix="kefu-conf-")
    ctx = zmq.Context()
    brokers = []        # (name, Popen, log path)
    clients = []

    def start_broker(name, extra):
        """Start kefu-broker with ipc:// endpoints and a database in the temp dir; return a
        function making clients for it."""
        eps = ["ipc://%s/%s-%s.sock" % (tmp, name, k) for k in ("req", "str", "wrk")]
        log_path = os.path.join(tmp, name + ".log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [broker_bin, "--requests", eps[0], "--streams", eps[1], "--workers-endpoint", eps[2],
                 "--db", os.path.join(tmp, name + ".db"), "--cache-mb", "0"] + extra,
                cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        brokers.append((name, proc, log_path))

        def client(timeout_s=10.0):
            c = KefuClient(eps[0], eps[1], context=ctx, timeout_s=timeout_s)
            clients.append(c)
            return c
        return proc, client

    global failed
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TOTAL_BUDGET_S)
    try:
        broker, client = start_broker("main", ["--workers", "2", "--pace-ms", str(PACE_MS),
                                               "--stream-wait-ms", str(STREAM_WAIT_MS)])
        run_all(client(), client, kb_path, broker)
        run_kb(client(), broker)
        broker2, client2 = start_broker("idle", ["--workers", "0", "--max-pending", "1",
                                                 "--job-timeout-ms", str(IDLE_TIMEOUT_MS)])
        run_idle(client2(), broker2)
        broker3, client3 = start_broker("cache", ["--workers", "1", "--cache-mb", "8"])
        run_cache(client3(), broker3)
    except Alarm as e:
        failed += 1
        print("FAIL  %-40s %s" % ("time budget", e))
    finally:
        signal.alarm(0)
        for c in clients:
            c.close()
        ctx.term()
        for name, proc, log_path in brokers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if failed:
                try:
                    with open(log_path, "rb") as f:
                        tail = f.read()[-3000:].decode("utf-8", "replace")
                    print("---- broker %s log (tail) ----\n%s\n---- end ----" % (name, tail))
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)
    print("conformance: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


def run_all(kc, client, kb_path, broker):
    state = {}

    # ------------------------------------------------------------------ health
    def health_ready():
        deadline = time.monotonic() + 10
        while True:
            expect(broker.poll() is None, "broker exited with %s" % broker.returncode)
            try:
                h = kc.call("health", timeout_s=1.0)
                if h.get("workers") == 2:
                    break
            except KefuTimeout:
                pass
            expect(time.monotonic() < deadline, "health never reported 2 workers")
            time.sleep(0.1)
        check_fields(h, {"status": str, "version": str, "workers": int, "uptime_ms": int}, "health")
        expect(h["status"] == "ok", "status %r" % h["status"])
        return "version %s, uptime %d ms" % (h["version"], h["uptime_ms"])
    run_check("health reports 2 workers", health_ready)

    def health_bytes():
        # 2.4: the document's exact bytes, both with and without params.
        doc = bytes.fromhex("83a26964a57265712d31a66d6574686f64a66865616c7468a6706172616d7380")
        expect(pack({"id": "req-1", "method": "health", "params": {}}) == doc,
               "msgpack.packb does not reproduce the document's 32 bytes")
        short = b"\x82" + doc[1:24]
        expect(len(short) == 24, "short form is %d bytes" % len(short))
        d = kc.dealer
        for body in (doc, short):
            d.send_multipart([b"KEFU1", body])
            r = recv_raw_reply(d)
            expect(set(r) == {"id", "ok", "result"} and r["ok"] is True and r["id"] == "req-1",
                   "reply %r" % r)
            expect(set(r["result"]) >= {"status", "version", "workers", "uptime_ms"},
                   "result %r" % r["result"])
    run_check("health from the document's bytes (2.4)", health_bytes)

    def stats():
        s = kc.stats()
        check_fields(s, {"workers": list, "queue_depth": int, "running": int, "jobs": dict,
                         "latency_ms": dict, "streams": dict, "sessions_cached": int}, "stats")
        expect(len(s["workers"]) == 2, "stats.workers has %d entries" % len(s["workers"]))
        for w in s["workers"]:
            check_fields(w, {"name": str, "pid": int, "capacity": int, "active": int,
                             "jobs_done": int}, "stats.workers[]")
        for k in ("requests", "accepted", "done", "errors", "rejected_busy", "timeouts",
                  "requeued", "workers_lost"):
            expect(is_int(s["jobs"].get(k)), "stats.jobs.%s %r" % (k, s["jobs"].get(k)))
        for k in ("p50", "p90", "p99", "max"):
            expect(isinstance(s["latency_ms"].get(k), (int, float)), "latency_ms.%s" % k)
        expect(is_int(s["latency_ms"].get("samples")), "latency_ms.samples")
        for k in ("open", "backlog"):
            expect(is_int(s["streams"].get(k)), "streams.%s" % k)
    run_check("stats shape", stats)

    # ------------------------------------------------------------------ knowledge base
    with open(kb_path, encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    state["kb"] = {it.get("external_id"): it for it in items}

    def kb_import():
        created = updated = 0
        for i in range(0, len(items), 40):
            batch = items[i:i + 40]
            r = kc.kb_item_create(batch)
            check_fields(r, {"data": list, "has_more": bool, "total": int, "created": int,
                             "updated": int}, "kb.item.create")
            expect(r["total"] == len(batch), "total %d for %d items" % (r["total"], len(batch)))
            for j, d in enumerate(r["data"]):
                expect(d.get("index") == j, "data[%d].index %r" % (j, d.get("index")))
                expect(d.get("status") in ("created", "updated") and is_int(d.get("id")),
                       "item %d: %r" % (i + j, d))
            expect(r["created"] + r["updated"] == len(batch), "created+updated != batch")
            created += r["created"]
            updated += r["updated"]
        # Re-importing is idempotent (upsert by external_id).
        r = kc.kb_item_create(items[:5])
        expect(r["updated"] == 5 and r["created"] == 0, "re-import: %r" % r)
        return "%d items: %d created, %d updated" % (len(items), created, updated)
    run_check("kb.item.create sample KB in batches", kb_import)

    def kb_item_rejected():
        r = kc.kb_item_create([{"question": "", "answer": "x"}], bot_id="conf-bot")
        d = r["data"][0]
        expect(d.get("status") == "rejected", "item not rejected: %r" % d)
        e = d.get("error") or {}
        expect(e.get("code") == 400 and e.get("name") == "missing_argument", "item error %r" % e)
    run_check("kb.item.create rejects an empty question", kb_item_rejected)

    faq1 = state["kb"]["faq-001"]

    def answers_from_kb():
        deadline = time.monotonic() + 10
        while True:
            r = kc.chat("怎么申请退货？")
            if r.get("sources") and r["sources"][0].get("external_id") == "faq-001":
                state["first"] = r
                return "after %s" % ("first try" if "tries" not in state else "%d tries" % state["tries"])
            state["tries"] = state.get("tries", 1) + 1
            expect(time.monotonic() < deadline, "no KB answer within 10 s: %r" % r)
            time.sleep(0.25)
    run_check("KB answers become available", answers_from_kb)

    # ------------------------------------------------------------------ non-streamed chat
    def chat_plain():
        r = state.get("first") or kc.chat("怎么申请退货？")
        check_chat_result(r, "chat result", streamed=False)
        expect(r["intent"] == "knowledge_qa", "intent %r" % r["intent"])
        expect(r["reply"] == faq1["answer"], "reply is not faq-001's answer: %r" % r["reply"])
        s = r["sources"][0]
        expect(s["question"] == faq1["question"] and s["category"] == faq1["category"],
               "source %r" % s)
        expect(r["confidence"] >= 0.45, "confidence %r" % r["confidence"])
        expect(r["turn_count"] == 1 and r["failed_attempts"] == 0,
               "turn_count %r failed_attempts %r" % (r["turn_count"], r["failed_attempts"]))
        expect(r["escalate_to_human"] is False, "escalates")
        state["sess"] = r["session_id"]
        state["msg_ids"] = [r["message_id"]]
        return "confidence %.3f, latency %d ms" % (r["confidence"], r["latency_ms"])
    run_check("chat 怎么申请退货？ from the KB", chat_plain)

    def continuity():
        r = kc.chat("退款多久能到账？", session_id=state["sess"])
        check_chat_result(r, "chat result", streamed=False)
        expect(r["session_id"] == state["sess"], "session changed")
        expect(r["turn_count"] == 2, "turn_count %r, want 2" % r["turn_count"])
        expect(r["message_id"] > state["msg_ids"][-1], "message_id not increasing")
        expect(r["sources"] and r["sources"][0]["external_id"] == "faq-002", "not faq-002: %r" % r)
        state["msg_ids"].append(r["message_id"])
    run_check("session continuity (turn_count 1 -> 2)", continuity)

    def unanswered():
        r = kc.chat("量子纠缠与薛定谔方程的哲学意义", session_id=state["sess"])
        check_chat_result(r, "chat result", streamed=False)
        state["msg_ids"].append(r["message_id"])
        expect(r["intent"] == "knowledge_qa" and r["sources"] == [], "answered?! %r" % r)
        expect(r["failed_attempts"] == 1, "failed_attempts %r" % r["failed_attempts"])
        return "turn_count after an unanswered turn: %r, suggestions %d" % (
            r["turn_count"], len(r["suggestions"]))
    run_check("unanswered turn counts failed_attempts", unanswered)

    # ------------------------------------------------------------------ history
    def history():
        sess = state["sess"]
        full = kc.history(sess)
        check_fields(full, {"data": list, "has_more": bool, "total": int}, "history")
        n = 2 * len(state["msg_ids"])
        expect(full["total"] == n and len(full["data"]) == n and full["has_more"] is False,
               "total %r len %d has_more %r, want %d" % (full["total"], len(full["data"]),
                                                         full["has_more"], n))
        ids = [m["id"] for m in full["data"]]
        expect(ids == sorted(ids), "not in ascending id order")
        for i, m in enumerate(full["data"]):
            check_fields(m, MESSAGE_FIELDS, "history.data[%d]" % i)
            expect("response_content" in m and m["response_content"] is None,
                   "history.data[%d].response_content %r" % (i, m.get("response_content")))
            check_usage(m["usage"], "history.data[%d]" % i)
            expect(m["session_id"] == sess and m["status"] == "ok", "message %r" % m)
            expect(m["role"] == ("user" if i % 2 == 0 else "assistant"), "roles do not alternate")
            for k in ("intent", "confidence", "sources", "suggestions"):
                expect(k in m, "message lacks %r" % k)
                if m["role"] == "user":
                    expect(m[k] is None, "user message %s is %r, want nil" % (k, m[k]))
        expect([m["id"] for m in full["data"][1::2]] == state["msg_ids"], "assistant ids != message_ids")
        expect([m["id"] for m in full["data"][0::2]] == [x - 1 for x in state["msg_ids"]],
               "user ids are not message_id - 1")
        expect(full["data"][0]["content"] == "怎么申请退货？", "first content %r" % full["data"][0]["content"])
        expect(full["data"][1]["content"] == faq1["answer"], "answer content differs")
        p1 = kc.history(sess, limit=1)
        expect(len(p1["data"]) == 1 and p1["has_more"] is True and p1["total"] == n, "limit 1: %r" % p1)
        p2 = kc.history(sess, limit=2.0, offset=n - 1)     # float without fraction is an int (1.3)
        expect(len(p2["data"]) == 1 and p2["has_more"] is False and p2["data"][0]["id"] == ids[-1],
               "last page %r" % p2)
        p3 = kc.history(sess, offset=n + 5)
        expect(p3["data"] == [] and p3["has_more"] is False and p3["total"] == n, "past end %r" % p3)
        m = kc.message_get(state["msg_ids"][0])
        expect(m == full["data"][1], "message.get differs from history")
        return "%d messages" % n
    run_check("history paging and message.get", history)

    # ------------------------------------------------------------------ streamed chat
    def streamed():
        seen = []
        sr = kc.chat_stream("怎么申请退货？", on_event=seen.append, user_id="u-conf", channel="wechat",
                            labels={"member_level": "gold"}, inputs={"order_id": 123})
        r = sr.result
        check_chat_result(r, "stream result", streamed=True)
        ev = sr.events
        expect(sr.complete, "stream incomplete")
        expect(ev == seen, "on_event saw a different sequence")
        expect([e["seq"] for e in ev] == list(range(len(ev))), "seqs not 0..n")
        expect(ev[0]["event"] == "meta", "first event %r" % ev[0].get("event"))
        m = ev[0]
        expect(m.get("session_id") == r["session_id"] and m.get("message_id") == r["message_id"]
               and m.get("intent") == r["intent"], "meta %r" % m)
        for k in ("confidence", "sources", "suggestions", "escalate_to_human"):
            expect(k in m, "meta lacks %r" % k)
        toks = ev[1:-1]
        expect(toks and all(e["event"] == "token" and isinstance(e.get("content"), str) for e in toks),
               "middle events are not all tokens")
        expect("".join(e["content"] for e in toks) == r["reply"], "tokens do not concatenate to reply")
        expect(r["reply"] == faq1["answer"], "reply is not the KB answer")
        d = ev[-1]
        expect(d["event"] == "done" and d["seq"] == r["last_seq"], "last event %r / last_seq %r"
               % (d.get("event"), r["last_seq"]))
        want = {k: v for k, v in r.items() if k != "last_seq"}
        got = {k: v for k, v in d.items() if k not in ("seq", "event")}
        expect(got == want, "done fields differ from reply: %r vs %r" % (got, want))
        expect(sr.fetch_calls == 0, "needed %d stream.fetch calls" % sr.fetch_calls)
        expect(sr.foreign_messages == 0, "got foreign topics")
        state["stream"] = sr
        return "%d events, last_seq %d, latency %d ms" % (len(ev), r["last_seq"], r["latency_ms"])
    run_check("streamed chat: meta, tokens, done, last_seq", streamed)

    def fetch_after_end():
        sr = state["stream"]
        f = kc.stream_fetch(sr.request_id, 0)
        check_fields(f, {"data": list, "has_more": bool, "total": int, "ended": bool}, "stream.fetch")
        expect(f["ended"] is True and f["has_more"] is False and f["total"] == len(f["data"]),
               "fetch %r" % {k: f[k] for k in ("has_more", "total", "ended")})
        expect(f["data"] == sr.events, "fetched events differ from streamed ones")
        g = kc.stream_fetch(sr.request_id, 5)
        expect(g["data"] == sr.events[5:], "from_seq 5 differs")
        h = kc.stream_fetch(sr.request_id, sr.result["last_seq"] + 1)
        expect(h["data"] == [] and h["total"] == 0 and h["ended"] is True, "past end %r" % h)
    run_check("stream.fetch after end == streamed", fetch_after_end)

    def stream_continue():
        sr = kc.chat_stream("退货的运费由谁承担？", session_id=state["stream"].result["session_id"],
                            user_id="u-conf")
        r = sr.result
        expect(sr.complete and r["turn_count"] == 2, "turn_count %r" % r["turn_count"])
        expect(sr.events[0].get("session_id") == r["session_id"], "meta session")
        expect(r["sources"] and r["sources"][0]["external_id"] == "faq-003", "not faq-003")
        expect(sr.text == r["reply"], "tokens != reply")
    run_check("streamed chat continues a session", stream_continue)

    def hold():
        # Subscribe shortly AFTER sending: the broker holds the events until it sees the
        # subscription (3.2), so everything still arrives live from seq 0.
        sr = kc.chat_stream("怎么申请退货？", subscribe_delay_s=STREAM_WAIT_MS / 5000.0)
        expect(sr.complete, "incomplete")
        expect(sr.live_seqs[:1] == [0], "first live seq %r" % sr.live_seqs[:1])
        expect(sr.fetch_calls == 0, "needed stream.fetch")
        expect(sr.text == sr.result["reply"], "tokens != reply")
        return "subscribed %d ms after sending" % (STREAM_WAIT_MS // 5)
    run_check("hold: subscription just after send", hold)

    def late_midstream():
        # Subscribe after the hold ended while tokens still flow: a gap, repaired by stream.fetch.
        sr = kc.chat_stream("怎么申请退货？", subscribe_delay_s=(STREAM_WAIT_MS + 350) / 1000.0)
        expect(sr.complete, "incomplete")
        expect(sr.fetch_calls >= 1, "no stream.fetch")
        expect(sr.text == sr.result["reply"], "tokens != reply")
        f = kc.stream_fetch(sr.request_id)
        expect(f["data"] == sr.events, "delivered events differ from retained ones")
        first = sr.live_seqs[0] if sr.live_seqs else None
        expect(first is not None and first > 0,
               "no mid-stream gap happened (first live seq %r); timing assumption failed" % first)
        return "first live seq %r, gaps %d, fetches %d" % (first, sr.gaps_detected, sr.fetch_calls)
    run_check("late subscriber mid-stream: gap repair", late_midstream)

    def late_after_end():
        # Subscribe after the whole stream ended: nothing live; the reply is waiting on the
        # DEALER; after the grace period the client fetches everything.
        lat = state["stream"].result["latency_ms"]
        sr = kc.chat_stream("怎么申请退货？",
                            subscribe_delay_s=(max(lat, STREAM_WAIT_MS) + 700) / 1000.0)
        expect(sr.complete, "incomplete")
        expect(sr.live_seqs == [], "live events %r arrived although subscribed late" % sr.live_seqs[:5])
        expect(sr.fetch_calls == 1, "fetches %d" % sr.fetch_calls)
        expect(sr.events[-1]["event"] == "done" and sr.text == sr.result["reply"], "events")
    run_check("late subscriber after end: fetch", late_after_end)

    def prefix_filtering():
        # Two clients; B's id has A's id as a prefix, so A's SUB also receives B's events and
        # must drop them (3.3).
        a, b = kc, client()
        ida = new_id()
        idb = ida + "-b"
        b.sub.setsockopt(zmq.SUBSCRIBE, idb.encode())
        b.send_request("chat", {"message": "退款多久能到账？", "stream": True}, idb)
        time.sleep(0.05)
        ra = a.chat_stream("怎么申请退货？", request_id=ida)
        try:
            rb = b.follow_stream(idb)
        finally:
            b.sub.setsockopt(zmq.UNSUBSCRIBE, idb.encode())
        expect(ra.complete and rb.complete, "incomplete")
        expect(ra.result["reply"] == faq1["answer"] and ra.text == faq1["answer"], "A's text")
        expect(rb.text == state["kb"]["faq-002"]["answer"], "B's text")
        expect(ra.foreign_messages > 0, "A never saw B's events (no overlap?)")
        return "A dropped %d foreign messages" % ra.foreign_messages
    run_check("exact-topic filtering with prefix ids", prefix_filtering)

    def conflict():
        a, b = kc, client()
        rid = new_id()
        a.sub.setsockopt(zmq.SUBSCRIBE, rid.encode())
        a.send_request("chat", {"message": "怎么申请退货？", "stream": True}, rid)
        time.sleep(0.2)
        try:
            e = expect_error(lambda: b.call("chat", {"message": "你好", "stream": True},
                                            request_id=rid), 409, "conflict", "duplicate stream id")
            sr = a.follow_stream(rid)
        finally:
            a.sub.setsockopt(zmq.UNSUBSCRIBE, rid.encode())
        expect(sr.complete and sr.text == faq1["answer"], "original stream damaged")
        expect(e.retry_after_ms is None, "retry_after_ms on conflict")
    run_check("409 conflict on an open stream id", conflict)

    def concurrent():
        # Several requests in flight on one DEALER; replies matched by id.
        ids = {}
        rid = kc.send_request("chat", {"message": "怎么申请退货？"})
        ids[rid] = "chat"
        for _ in range(5):
            ids[kc.send_request("health")] = "health"
        order = []
        deadline = time.monotonic() + 10
        while len(order) < len(ids):
            expect(time.monotonic() < deadline, "replies missing")
            r = recv_raw_reply(kc.dealer)
            expect(r["id"] in ids and r["ok"] is True, "unexpected reply %r" % r)
            order.append(ids[r["id"]])
        return "reply order: %s" % ",".join(order)
    run_check("pipelined requests matched by id", concurrent)

    def session_queue():
        # 8.1: chats for one session sent back to back run one after the other, in order.
        s = kc.session_create(channel="web")["session_id"]
        msgs = ["怎么申请退货？", "退款多久能到账？", "你好"]
        ids = [kc.send_request("chat", {"message": m, "session_id": s}) for m in msgs]
        res = [kc.wait_reply(i) for i in ids]
        expect(all(r.get("ok") is True for r in res), "errors %r" % res)
        expect([r["result"]["turn_count"] for r in res] == [1, 2, 3], "turn counts %r"
               % [r["result"]["turn_count"] for r in res])
        h = kc.history(s)
        expect([m["content"] for m in h["data"][0::2]] == msgs, "user messages out of order")
        expect([m["role"] for m in h["data"]] == ["user", "assistant"] * 3, "roles")
    run_check("per-session queue keeps order (8.1)", session_queue)

    def float64_on_wire():
        # 1.3: confidence and score are float64 (cb) even when integral (1.0).
        rid = kc.send_request("chat", {"message": "怎么申请退货？"})
        deadline = time.monotonic() + 10
        while True:
            expect(time.monotonic() < deadline, "no reply")
            raw = kc.dealer.recv_multipart()[1] if kc.dealer.poll(1000) else None
            if raw is not None and unpack(raw).get("id") == rid:
                break
        expect(b"\xaaconfidence\xcb" in raw, "confidence is not float64")
        expect(b"\xa5score\xcb" in raw, "score is not float64")
    run_check("floats are float64 on the wire", float64_on_wire)

    # ------------------------------------------------------------------ errors
    def err_unknown_method():
        r = kc.call_raw("no.such.method", {})
        check_error_reply(r, 404, "unknown_method", r.get("id"), "unknown method")
    run_check("unknown_method 404", err_unknown_method)

    def err_params():
        expect_error(lambda: kc.call("chat", {}), 400, "missing_argument", "chat without message")
        expect_error(lambda: kc.call("chat", {"message": ""}), 400, "missing_argument", "empty message")
        expect_error(lambda: kc.call("chat", {"message": 5}), 400, "invalid_param", "message int")
        expect_error(lambda: kc.call("chat", {"message": b"\xe9"}), 400, "invalid_param", "message bin")
        expect_error(lambda: kc.call("chat", {"message": "hi", "channel": "fax"}), 400,
                     "invalid_param", "bad channel")
        expect_error(lambda: kc.call("chat", {"message": "hi", "stream": 1}), 400,
                     "invalid_param", "stream int")
        expect_error(lambda: kc.call("chat", {"message": "x" * 4001}), 413, "too_large", "4001 chars")
        expect_error(lambda: kc.call("history", {"session_id": state["sess"], "limit": 0}), 400,
                     "invalid_param", "limit 0")
        expect_error(lambda: kc.call("history", {}), 400, "missing_argument", "history no session")
        expect_error(lambda: kc.call("kb.item.create", {}), 400, "missing_argument", "kb no items")
        expect_error(lambda: kc.call("kb.item.create", {"items": []}), 400, "invalid_param",
                     "kb empty items")
        expect_error(lambda: kc.call("message.get", {}), 400, "missing_argument", "message.get")
        expect_error(lambda: kc.call("message.get", {"message_id": 0}), 400, "invalid_param",
                     "message_id 0")
    run_check("parameter errors (400/413)", err_params)

    def err_not_found():
        fake = "s_" + "0" * 20
        expect_error(lambda: kc.chat("你好", session_id=fake), 404, "not_found", "unknown session")
        expect_error(lambda: kc.chat("你好", session_id=""), 404, "not_found", "empty session_id")
        expect_error(lambda: kc.history(fake), 404, "not_found", "history unknown session")
        expect_error(lambda: kc.message_get(10 ** 12), 404, "not_found", "message.get")
        expect_error(lambda: kc.stream_fetch(new_id()), 404, "not_found", "stream.fetch unknown")
        # A streamed chat rejected up front opens no stream and publishes nothing (3.4).
        try:
            kc.chat_stream("你好", session_id=fake, timeout_s=5)
            raise CheckFailed("streamed chat on unknown session succeeded")
        except KefuError as e:
            check_error(e, 404, "not_found", "streamed unknown session")
            expect(e.events == [], "events were published: %r" % e.events)
            rejected_id = e.request_id
            expect_error(lambda: kc.stream_fetch(rejected_id), 404, "not_found",
                         "stream of rejected chat")
        # Ownership (4.0).
        s = kc.session_create(user_id="owner-1", channel="app")
        check_fields(s, {"session_id": str, "user_id": str, "channel": str, "bot_id": str,
                         "created_at": int}, "session.create")
        expect(s["user_id"] == "owner-1" and s["channel"] == "app" and s["bot_id"] == "default",
               "session %r" % s)
        expect_error(lambda: kc.chat("你好", session_id=s["session_id"], user_id="intruder"), 404,
                     "not_found", "other user's session")
        expect_error(lambda: kc.history(s["session_id"], user_id="intruder"), 404, "not_found",
                     "other user's history")
        r = kc.chat("你好", session_id=s["session_id"], user_id="owner-1")
        expect(r["session_id"] == s["session_id"] and r["turn_count"] == 1, "owner chat %r" % r)
        r = kc.chat("你好", session_id=s["session_id"])     # no user_id: no ownership check
        expect(r["turn_count"] == 2, "turn_count %r" % r["turn_count"])
        return "chitchat intent for 你好: %s" % r["intent"]
    run_check("not_found 404 and ownership", err_not_found)

    def err_frames():
        def deep(n):            # n nested arrays; with body and params maps: depth n + 2
            v = 1
            for _ in range(n):
                v = [v]
            return v
        d = kc.dealer
        good = pack({"id": "f-1", "method": "health"})
        cases = [
            ("REQ-style delimiter", [b"", b"KEFU1", good], 400, "bad_frames"),
            ("one frame", [b"KEFU1"], 400, "bad_frames"),
            ("bad signature", [b"KEFU2", good], 400, "bad_frames"),
            ("trailing bytes", [b"KEFU1", good + b"\xc0"], 400, "bad_msgpack"),
            ("truncated", [b"KEFU1", good[:-3]], 400, "bad_msgpack"),
            ("not a map", [b"KEFU1", pack(["f-1", "health"])], 400, "invalid_request"),
            ("no id", [b"KEFU1", pack({"method": "health"})], 400, "invalid_request"),
            ("bin id", [b"KEFU1", pack({"id": b"f-1", "method": "health"})], 400, "invalid_request"),
            ("id 129 bytes", [b"KEFU1", pack({"id": "x" * 129, "method": "health"})], 400,
             "invalid_request"),
            ("too deep", [b"KEFU1", pack({"id": "f-1", "method": "health",
                                          "params": {"a": deep(32)}})],
             400, "bad_msgpack"),
        ]
        for what, frames, code, name in cases:
            d.send_multipart(frames)
            check_error_reply(recv_raw_reply(d), code, name, None, what)
        # The id can be read: it is echoed.
        for what, body, name in [
                ("no method", {"id": "f-2"}, "invalid_request"),
                ("params not map", {"id": "f-3", "method": "health", "params": [1]}, "invalid_request"),
                ("method case", {"id": "f-4", "method": "Health"}, "unknown_method")]:
            d.send_multipart([b"KEFU1", pack(body)])
            code = 404 if name == "unknown_method" else 400
            check_error_reply(recv_raw_reply(d), code, name, body["id"], what)
        # nil params is an empty map; 128-byte id is fine.
        d.send_multipart([b"KEFU1", pack({"id": "y" * 128, "method": "health", "params": None})])
        r = recv_raw_reply(d)
        expect(r.get("ok") is True and r.get("id") == "y" * 128, "nil params / 128-byte id: %r" % r)
        return "%d malformed requests" % (len(cases) + 3)
    run_check("request-level errors (2.5) with nil ids", err_frames)

    # ------------------------------------------------------------------ English / mixed
    def english_mixed():
        notes = []
        for msg in ("How do I return an item?", "hello", "Thanks!"):
            r = kc.chat(msg)
            check_chat_result(r, "chat %r" % msg, streamed=False)
            expect(r["reply"], "empty reply to %r" % msg)
            notes.append("%r->%s" % (msg, r["intent"]))
        r = kc.chat("请帮我转人工 please, my order is wrong")
        check_chat_result(r, "mixed transfer", streamed=False)
        expect(r["intent"] == "transfer_to_human" and r["escalate_to_human"] is True
               and r["confidence"] == 1.0, "transfer: %r" % r)
        sr = kc.chat_stream("我想退货 how do I return the iPhone 15 Pro?")
        check_chat_result(sr.result, "mixed stream", streamed=True)
        expect(sr.complete and sr.text == sr.result["reply"], "mixed stream tokens != reply")
        notes.append("mixed->%s" % sr.result["intent"])
        return ", ".join(notes)
    run_check("English and mixed-language messages", english_mixed)

    def final_health():
        expect(broker.poll() is None, "broker died")
        h = kc.health()
        expect(h["workers"] == 2 and h["status"] == "ok", "health %r" % h)
        s = kc.stats()
        expect(s["streams"]["open"] == 0 and s["queue_depth"] == 0 and s["running"] == 0,
               "leftover work: streams %r queue %r running %r"
               % (s["streams"], s["queue_depth"], s["running"]))
        return "requests %d, accepted %d, done %d, errors %d" % (
            s["jobs"]["requests"], s["jobs"]["accepted"], s["jobs"]["done"], s["jobs"]["errors"])
    run_check("broker healthy at the end", final_health)


def run_idle(kc, broker):
    """A second broker with no workers, --max-pending 1 and a short deadline: no_workers, busy,
    and a timeout that ends a stream with a lone error event (4.2, 8.4, 8.5, 5.4)."""
    state = {}

    def idle_health():
        deadline = time.monotonic() + 10
        while True:
            expect(broker.poll() is None, "broker exited with %s" % broker.returncode)
            try:
                h = kc.call("health", timeout_s=1.0)
                break
            except KefuTimeout:
                expect(time.monotonic() < deadline, "no health reply")
        expect(h["status"] == "no_workers" and h["workers"] == 0, "health %r" % h)
    run_check("idle broker: health no_workers", idle_health)

    def busy_and_timeout():
        s = kc.session_create(user_id="u-idle")["session_id"]
        rid = new_id()
        kc.sub.setsockopt(zmq.SUBSCRIBE, rid.encode())
        t0 = time.monotonic()
        kc.send_request("chat", {"message": "怎么申请退货？", "session_id": s, "stream": True}, rid)
        time.sleep(0.1)
        # The first chat is pending (no worker): the next one is refused with busy.
        r = kc.call_raw("chat", {"message": "你好"})
        expect(r.get("ok") is False, "second chat accepted: %r" % r)
        err = r["error"]
        expect(err.get("code") == 429 and err.get("name") == "busy"
               and err.get("retry_after_ms") == 100, "busy error %r" % err)
        expect(kc.health()["status"] == "no_workers", "other methods limited")
        try:
            sr = kc.follow_stream(rid, timeout_s=5)
            raise CheckFailed("chat without workers succeeded: %r" % sr.result)
        except KefuError as e:
            check_error(e, 504, "timeout", "deadline")
            took = (time.monotonic() - t0) * 1000
            expect(took >= IDLE_TIMEOUT_MS - 50, "failed after %.0f ms" % took)
            state["events_at_error"] = list(e.events)
        finally:
            kc.sub.setsockopt(zmq.UNSUBSCRIBE, rid.encode())
        # The error event (seq 0, the only event) may arrive just after the reply: fetch it.
        f = kc.stream_fetch(rid)
        expect(f["ended"] is True and len(f["data"]) == 1, "fetch %r" % f)
        ev = f["data"][0]
        expect(ev.get("seq") == 0 and ev.get("event") == "error"
               and (ev.get("error") or {}).get("name") == "timeout", "error event %r" % ev)
        s2 = kc.stats()
        expect(s2["jobs"]["rejected_busy"] >= 1 and s2["jobs"]["timeouts"] >= 1, "stats %r" % s2["jobs"])
        return "%d event(s) live before the error reply" % len(state["events_at_error"])
    run_check("idle broker: busy 429, timeout 504 + error event", busy_and_timeout)

# ---------------------------------------------------------------------- knowledge base (section 12)

NO_SUCH_ID = 2 ** 40            # an id no test database reaches

CARD = {"title": "星尘卡自助服务", "description": "激活、查询余额都可以自助办理",
        "rows": [{"text": "立即激活", "action": "url", "value": "https://m.example.com/stardust/activate"},
                 {"text": "星尘卡余额怎么查？", "action": "reply", "value": "星尘卡余额怎么查？"},
                 {"text": "转人工客服", "action": "transfer"}]}
STYLE = {"text": "VIP专享：激活即送100积分", "color": "#C41D7F", "background": "#FFF0F6",
         "icon": "https://img.example.com/vip.png", "link": "https://m.example.com/vip"}
FORM = {"title": "上海VIP激活礼", "params": [{"key": "积分", "value": "200"},
                                            {"key": "有效期", "value": "30天"}]}
ARTICLES = {"articles": [{"title": "积分商城入口", "description": "首页-我的-积分商城",
                          "pic_url": "https://img.example.com/mall.jpg", "action": "url",
                          "link": "https://m.example.com/mall"},
                         {"title": "积分怎么用？", "action": "reply"}]}
ITEM_KEYS = {"id", "external_id", "category_id", "category", "question", "similar_questions",
             "answer", "variants", "response_type", "response_content", "status", "keywords",
             "updated_at"}
CATEGORY_KEYS = {"id", "parent_id", "name", "path", "position", "enabled", "item_count",
                 "created_at", "updated_at"}


def check_batch(r, n, where):
    """The batch result of 4.8."""
    check_fields(r, {"data": list, "total": int, "created": int, "updated": int, "has_more": bool},
                 where)
    expect(len(r["data"]) == n and r["total"] == n and r["has_more"] is False,
           "%s: %d entries, total %r, has_more %r" % (where, len(r["data"]), r["total"], r["has_more"]))
    for i, d in enumerate(r["data"]):
        expect(d.get("index") == i, "%s.data[%d].index %r" % (where, i, d.get("index")))
    statuses = [d.get("status") for d in r["data"]]
    expect(r["created"] == statuses.count("created") and r["updated"] == statuses.count("updated"),
           "%s: counts %r/%r for %r" % (where, r["created"], r["updated"], statuses))


def entry_ok(r, i, status, where):
    d = r["data"][i]
    expect(d.get("status") == status and is_int(d.get("id")) and "error" not in d,
           "%s entry %d: %r, want %s" % (where, i, d, status))
    return d["id"]


def entry_error(r, i, code, name, where):
    d = r["data"][i]
    expect(d.get("status") == "rejected" and set(d) == {"index", "status", "error"},
           "%s entry %d not rejected: %r" % (where, i, d))
    e = d["error"]
    expect(set(e) == {"code", "name", "message"} and isinstance(e["message"], str) and e["message"],
           "%s entry %d: error map %r" % (where, i, e))
    expect(e["code"] == code and e["name"] == name,
           "%s entry %d: %s %s (%s), want %s %s" % (where, i, e["code"], e["name"], e["message"],
                                                    code, name))


def check_paged(r, where):
    """The paged result of 4.19."""
    check_fields(r, {"data": list, "total": int, "page": int, "page_size": int, "has_more": bool},
                 where)


def chat_until(kc, message, pred, timeout_s=3.0, **params):
    """Chat (non-streamed) until pred(result) holds; return (result, seconds waited)."""
    t0 = time.monotonic()
    while True:
        r = kc.chat(message, **params)
        if pred(r):
            return r, time.monotonic() - t0
        expect(time.monotonic() - t0 < timeout_s, "after %.1f s: %r" % (timeout_s, r))
        time.sleep(0.05)


def answered_by(item_id):
    return lambda r: bool(r["sources"]) and r["sources"][0]["id"] == item_id


def not_answered_by(item_id):
    return lambda r: not r["sources"] or r["sources"][0]["id"] != item_id


def run_kb(kc, broker):
    """The knowledge base from section 12 and methods 4.8, 4.18-4.30, on a fresh bot of the main
    broker (which runs without a hot-answer cache)."""
    bot = "conf-kb-" + new_id()[:8]
    st = {}

    def call(method, **params):
        params.setdefault("bot_id", bot)
        return kc.call(method, params)

    def categories_create():
        r = call("kb.category.create", categories=[
            {"name": "会员服务"}, {"name": "会员服务"}, {"name": "a/b"},
            {"name": "x", "parent_id": NO_SUCH_ID}, {"name": ""}])
        check_batch(r, 5, "kb.category.create")
        top = entry_ok(r, 0, "created", "kb.category.create")
        entry_error(r, 1, 409, "conflict", "sibling name")
        entry_error(r, 2, 400, "invalid_param", "name with /")
        entry_error(r, 3, 404, "not_found", "unknown parent")
        entry_error(r, 4, 400, "missing_argument", "empty name")
        r = call("kb.category.create", categories=[
            {"name": "积分", "parent_id": top}, {"name": "权益", "parent_id": top, "enabled": False}])
        check_batch(r, 2, "kb.category.create children")
        st["top"] = top
        st["points"] = entry_ok(r, 0, "created", "child")
        st["perks"] = entry_ok(r, 1, "created", "disabled child")
        # 8 levels at most: a chain of 8 below nothing, then a ninth.
        parent = 0
        for level in range(1, 9):
            r = call("kb.category.create", categories=[{"name": "L%d" % level, "parent_id": parent}])
            parent = entry_ok(r, 0, "created", "level %d" % level)
        r = call("kb.category.create", categories=[{"name": "L9", "parent_id": parent}])
        entry_error(r, 0, 400, "invalid_param", "level 9")
        expect_error(lambda: call("kb.category.create",
                                  categories=[{"name": "c%d" % i} for i in range(21)]),
                     413, "too_large", "21 categories")
        expect_error(lambda: call("kb.category.create"), 400, "missing_argument", "no categories")
        expect_error(lambda: call("kb.category.create", categories=[]), 400, "invalid_param",
                     "empty categories")
    run_check("kb.category.create: tree, per-entry errors", categories_create)

    def categories_query():
        r = call("kb.category.query", parent_id=st["top"])
        check_paged(r, "kb.category.query")
        expect(r["total"] == 2 and r["page"] == 1 and r["page_size"] == 20 and r["has_more"] is False,
               "query %r" % {k: r[k] for k in ("total", "page", "page_size", "has_more")})
        for c in r["data"]:
            expect(set(c) == CATEGORY_KEYS, "category keys %r" % sorted(c))
        a, b = r["data"]
        expect(a["name"] == "积分" and a["path"] == "会员服务/积分" and a["parent_id"] == st["top"]
               and a["enabled"] is True and a["item_count"] == 0, "first child %r" % a)
        expect(b["name"] == "权益" and b["enabled"] is False and a["position"] < b["position"],
               "second child %r" % b)
        r = call("kb.category.query", parent_id=st["top"], page=2, page_size=1)
        expect(len(r["data"]) == 1 and r["data"][0]["id"] == st["perks"] and r["has_more"] is False
               and r["total"] == 2, "page 2 %r" % r)
        r = call("kb.category.query", name="权")
        expect([c["id"] for c in r["data"]] == [st["perks"]], "name filter %r" % r["data"])
        expect_error(lambda: call("kb.category.query", page_size=51), 400, "invalid_param",
                     "page_size 51")
    run_check("kb.category.query: paths, filters, paging", categories_query)

    def items_create():
        items = [
            {"external_id": "conf-card", "question": "星尘卡怎么激活？",
             "similar_questions": ["星尘卡激活方法"], "answer": "在App首页点击星尘卡即可激活。",
             "category_id": st["points"], "keywords": ["星尘卡"],
             "response_type": "template_card", "response_content": CARD,
             "variants": [
                 {"labels": {"vip": "true"}, "answer": "VIP会员激活星尘卡后额外送100积分。",
                  "response_type": "style_text", "response_content": STYLE},
                 {"labels": {"vip": "true", "city": "shanghai"},
                  "answer": "上海VIP会员激活星尘卡送200积分。",
                  "response_type": "form_show", "response_content": FORM}]},
            {"external_id": "conf-mall", "question": "积分商城在哪里？",
             "answer": "首页-我的-积分商城。", "category": " 会员服务 / 商城//入口 ",
             "response_type": "image_text", "response_content": ARTICLES},
            {"external_id": "conf-off", "question": "周年庆抽奖几号开始？", "answer": "周年庆抽奖已结束。",
             "status": 0},
            {"external_id": "conf-perk", "question": "生日礼包怎么领取？", "answer": "生日当月在会员中心领取。",
             "category_id": st["perks"]},
            {"question": "坏颜色", "answer": "x", "response_type": "style_text",
             "response_content": {"text": "x", "color": "red"}},
            {"question": "拼错字段", "answer": "x", "similar_question": ["a"]},
            {"question": "没有分类", "answer": "x", "category_id": NO_SUCH_ID},
            {"question": "文本带内容", "answer": "x", "response_content": {"text": "x"}},
            {"question": "变体无标签", "answer": "x", "variants": [{"answer": "y"}]},
            {"question": "没有答案"},
            {"question": "坏图片", "answer": "x", "response_type": "image_text",
             "response_content": {"articles": [{"title": "t", "pic_url": "ftp://x"}]}},
            {"question": "卡片无内容", "answer": "x", "response_type": "template_card"},
            {"question": "未知类型", "answer": "x", "response_type": "video"},
            {"question": "卡片多余字段", "answer": "x", "response_type": "form_show",
             "response_content": {"params": [{"key": "a", "value": "b", "note": "c"}]}},
        ]
        r = call("kb.item.create", items=items)
        check_batch(r, len(items), "kb.item.create")
        expect(r["created"] == 4 and r["updated"] == 0, "created %r" % r["created"])
        st["card"] = entry_ok(r, 0, "created", "card item")
        st["mall"] = entry_ok(r, 1, "created", "path item")
        st["off"] = entry_ok(r, 2, "created", "off-shelf item")
        st["perk"] = entry_ok(r, 3, "created", "disabled-category item")
        for i, (code, name) in enumerate([(400, "invalid_param"), (400, "invalid_param"),
                                          (404, "not_found"), (400, "invalid_param"),
                                          (400, "invalid_param"), (400, "missing_argument"),
                                          (400, "invalid_param"), (400, "invalid_param"),
                                          (400, "invalid_param"), (400, "invalid_param")]):
            entry_error(r, 4 + i, code, name, "bad item %d" % (4 + i))
        # Upsert by external_id: the same id, "updated".
        r = call("kb.item.create", items=[{"external_id": "conf-off", "question": "周年庆抽奖几号开始？",
                                           "answer": "周年庆抽奖已结束，敬请期待明年。", "status": 0}])
        expect(entry_ok(r, 0, "updated", "upsert") == st["off"] and r["updated"] == 1, "upsert %r" % r)
        expect_error(lambda: call("kb.item.create",
                                  items=[{"question": "q%d" % i, "answer": "a"} for i in range(501)]),
                     413, "too_large", "501 items")
        return "4 created, 10 rejected with their reasons"
    run_check("kb.item.create: rich answers, variants, rejections", items_create)

    def items_query():
        r = call("kb.item.query", ids=[st["card"]])
        check_paged(r, "kb.item.query")
        expect(r["total"] == 1 and len(r["data"]) == 1, "ids filter %r" % r)
        it = r["data"][0]
        expect(set(it) == ITEM_KEYS, "item keys %r" % sorted(it))
        expect(it["id"] == st["card"] and it["external_id"] == "conf-card" and it["status"] == 1
               and it["category_id"] == st["points"] and it["category"] == "会员服务/积分"
               and it["similar_questions"] == ["星尘卡激活方法"] and it["keywords"] == ["星尘卡"]
               and is_int(it["updated_at"]), "item %r" % it)
        expect(it["response_type"] == "template_card" and it["response_content"] == CARD,
               "rich answer not returned as written: %r" % it["response_content"])
        want = [{"labels": {"vip": "true"}, "answer": "VIP会员激活星尘卡后额外送100积分。",
                 "response_type": "style_text", "response_content": STYLE},
                {"labels": {"vip": "true", "city": "shanghai"}, "answer": "上海VIP会员激活星尘卡送200积分。",
                 "response_type": "form_show", "response_content": FORM}]
        expect(it["variants"] == want, "variants %r" % it["variants"])
        st["card_item"] = it
        r = call("kb.item.query", ids=[st["mall"]])
        m = r["data"][0]
        expect(m["category"] == "会员服务/商城/入口" and m["response_content"] == ARTICLES
               and m["variants"] == [] and m["external_id"] == "conf-mall", "path item %r" % m)
        r = call("kb.item.query", category_id=st["top"], include_subcategories=True)
        expect(sorted(i["id"] for i in r["data"]) == sorted([st["card"], st["mall"], st["perk"]]),
               "subtree %r" % [i["id"] for i in r["data"]])
        r = call("kb.item.query", category_id=st["top"])
        expect(r["total"] == 0 and r["data"] == [], "items directly in the top category %r" % r)
        r = call("kb.item.query", status=0)
        expect([i["id"] for i in r["data"]] == [st["off"]], "status 0 %r" % r["data"])
        r = call("kb.item.query", category_id=0)
        expect([i["id"] for i in r["data"]] == [st["off"]] and r["data"][0]["category"] == ""
               and r["data"][0]["category_id"] == 0, "no category %r" % r["data"])
        r = call("kb.item.query", keyword="激活方法")      # found through a similar question
        expect([i["id"] for i in r["data"]] == [st["card"]], "keyword %r" % r["data"])
        r = call("kb.item.query", page=2, page_size=2)
        expect(r["total"] == 4 and len(r["data"]) == 2 and r["has_more"] is False
               and r["page"] == 2 and r["page_size"] == 2, "page 2 %r" % r)
        ids = [i["id"] for i in call("kb.item.query")["data"]]
        expect(ids == sorted(ids), "not in id order: %r" % ids)
        expect_error(lambda: call("kb.item.query", page_size=101), 400, "invalid_param", "page_size")
        expect_error(lambda: call("kb.item.query", ids=["a"]), 400, "invalid_param", "ids str")
        r = call("kb.category.query", ids=[st["points"]])
        expect(r["data"][0]["item_count"] == 1, "item_count %r" % r["data"][0])
    run_check("kb.item.query: fields, filters, paging", items_query)

    q = "星尘卡怎么激活？"

    def chat_variants():
        r, waited = chat_until(kc, q, answered_by(st["card"]), bot_id=bot)
        check_chat_result(r, "default answer", streamed=False)
        expect(r["reply"] == "在App首页点击星尘卡即可激活。" and r["response_type"] == "template_card"
               and r["response_content"] == CARD and r["cached"] is False, "default answer %r" % r)
        expect(r["sources"][0]["category"] == "会员服务/积分" and r["sources"][0]["external_id"]
               == "conf-card", "source %r" % r["sources"][0])
        cases = [({"vip": "true"}, "VIP会员激活星尘卡后额外送100积分。", "style_text", STYLE),
                 ({"vip": "true", "city": "shanghai", "level": "3"}, "上海VIP会员激活星尘卡送200积分。",
                  "form_show", FORM),
                 ({"city": "shanghai"}, "在App首页点击星尘卡即可激活。", "template_card", CARD),
                 ({"vip": "True"}, "在App首页点击星尘卡即可激活。", "template_card", CARD),
                 ({}, "在App首页点击星尘卡即可激活。", "template_card", CARD)]
        for labels, reply, rtype, content in cases:
            r = kc.chat(q, bot_id=bot, labels=labels)
            check_chat_result(r, "labels %r" % labels, streamed=False)
            expect(r["reply"] == reply and r["response_type"] == rtype
                   and r["response_content"] == content and answered_by(st["card"])(r),
                   "labels %r: %r / %s" % (labels, r["reply"], r["response_type"]))
        # Streamed: the rich part comes with done; tokens are the text; history keeps it all.
        sr = kc.chat_stream(q, bot_id=bot, labels={"vip": "true", "city": "shanghai"})
        expect(sr.complete, "stream incomplete")
        check_chat_result(sr.result, "streamed variant", streamed=True)
        done = sr.events[-1]
        expect(done["event"] == "done" and done["response_type"] == "form_show"
               and done["response_content"] == FORM and done["cached"] is False, "done %r" % done)
        expect(sr.text == sr.result["reply"] == "上海VIP会员激活星尘卡送200积分。", "tokens %r" % sr.text)
        m = kc.message_get(sr.result["message_id"])
        expect(m["response_type"] == "form_show" and m["response_content"] == FORM
               and m["content"] == sr.result["reply"] and m["status"] == "ok", "message.get %r" % m)
        h = kc.history(sr.result["session_id"])
        expect(h["data"][-1] == m and h["data"][0]["response_content"] is None, "history %r" % h["data"])
        return "answered %.2f s after the write" % waited
    run_check("chat: labels choose the variant; rich answers", chat_variants)

    def suggest():
        r = call("suggest", keyword="星尘")
        expect(set(r) == {"data"} and r["data"] == [{"id": st["card"], "question": q}],
               "suggest %r" % r)
        r = call("suggest", keyword="  积分商城  ", number=1)
        expect(r["data"] == [{"id": st["mall"], "question": "积分商城在哪里？"}], "trimmed %r" % r)
        r = call("suggest", keyword="激活")              # contained, not a prefix
        expect([d["id"] for d in r["data"]] == [st["card"]], "contains %r" % r)
        expect(call("suggest", keyword="周年庆")["data"] == [], "off-shelf item suggested")
        expect(call("suggest", keyword=" \t ")["data"] == [], "blank keyword")
        expect_error(lambda: call("suggest"), 400, "missing_argument", "no keyword")
        expect_error(lambda: call("suggest", keyword="星", number=11), 400, "invalid_param", "number 11")
    run_check("suggest", suggest)

    def off_shelf_and_disabled():
        r = kc.chat("周年庆抽奖几号开始？", bot_id=bot)
        expect(not_answered_by(st["off"])(r), "off-shelf item answered: %r" % r["reply"])
        r = kc.chat("生日礼包怎么领取？", bot_id=bot)
        expect(not_answered_by(st["perk"])(r), "item of a disabled category answered")
        r = call("kb.item.update", items=[{"external_id": "conf-off", "status": 1}])
        check_batch(r, 1, "on shelf")
        _, w1 = chat_until(kc, "周年庆抽奖几号开始？", answered_by(st["off"]), bot_id=bot)
        r = call("kb.category.update", categories=[{"id": st["perks"], "enabled": True}])
        check_batch(r, 1, "enable")
        _, w2 = chat_until(kc, "生日礼包怎么领取？", answered_by(st["perk"]), bot_id=bot)
        # Disabling an ancestor switches off its whole subtree.
        call("kb.category.update", categories=[{"id": st["top"], "enabled": False}])
        _, w3 = chat_until(kc, q, not_answered_by(st["card"]), bot_id=bot)
        r = call("kb.category.query", ids=[st["points"]])
        expect(r["data"][0]["enabled"] is True, "a subcategory reports its own flag")
        call("kb.category.update", categories=[{"id": st["top"], "enabled": True}])
        _, w4 = chat_until(kc, q, answered_by(st["card"]), bot_id=bot)
        return "changes served after %.2f/%.2f/%.2f/%.2f s" % (w1, w2, w3, w4)
    run_check("off shelf and disabled categories", off_shelf_and_disabled)

    def items_update():
        r = call("kb.item.update", items=[
            {"external_id": "conf-card", "answer": "新版：在App首页点击星尘卡激活。"},
            {"id": NO_SUCH_ID, "answer": "x"},
            {"answer": "没有定位"},
            {"external_id": "conf-card", "response_type": "image_text"},
            {"id": st["mall"], "status": 0, "category_id": 0},
            {"id": st["mall"], "external_id": "conf-card"},
            {"id": st["mall"], "question": ""}])
        check_batch(r, 7, "kb.item.update")
        expect(entry_ok(r, 0, "updated", "by external_id") == st["card"], "id")
        entry_error(r, 1, 404, "not_found", "unknown id")
        entry_error(r, 2, 400, "missing_argument", "no locator")
        entry_error(r, 3, 400, "invalid_param", "type without content")
        expect(entry_ok(r, 4, "updated", "by id") == st["mall"], "id")
        entry_error(r, 5, 409, "conflict", "external_id taken")
        entry_error(r, 6, 400, "invalid_param", "empty question")
        it = call("kb.item.query", ids=[st["card"]])["data"][0]
        want = dict(st["card_item"], answer="新版：在App首页点击星尘卡激活。")
        got = dict(it)
        expect(got.pop("updated_at") >= want.pop("updated_at"), "updated_at went back")
        expect(got == want, "other fields changed: %r" % it)
        m = call("kb.item.query", ids=[st["mall"]])["data"][0]
        expect(m["status"] == 0 and m["category"] == "" and m["external_id"] == "conf-mall"
               and m["response_type"] == "image_text", "partial update %r" % m)
        r, waited = chat_until(kc, q, lambda r: r["reply"].startswith("新版"), bot_id=bot)
        expect(r["response_content"] == CARD, "content after update %r" % r["response_content"])
        return "new answer after %.2f s" % waited
    run_check("kb.item.update: partial changes", items_update)

    def synonyms():
        m = "银河卡怎么激活？"
        r = kc.chat(m, bot_id=bot)
        expect(not (answered_by(st["card"])(r) and r["confidence"] >= 0.999),
               "exact match before the synonym group exists")
        r = call("kb.synonyms.create", groups=[{"words": ["星尘卡", "银河卡"]}, {"words": ["同", "同"]},
                                               {"words": ["独"]}, {"words": ["x" * 21, "y"]}])
        check_batch(r, 4, "kb.synonyms.create")
        gid = entry_ok(r, 0, "created", "group")
        entry_error(r, 1, 400, "invalid_param", "repeated word")
        entry_error(r, 2, 400, "invalid_param", "one word")
        entry_error(r, 3, 413, "too_large", "21 characters")
        r, waited = chat_until(kc, m, lambda r: answered_by(st["card"])(r) and r["confidence"] >= 0.999,
                               bot_id=bot)
        expect(r["sources"][0]["question"] == q, "source question rewritten: %r" % r["sources"])
        r = call("kb.synonyms.query", keyword="银河")
        check_paged(r, "kb.synonyms.query")
        expect(r["total"] == 1 and r["data"][0]["id"] == gid
               and r["data"][0]["words"] == ["星尘卡", "银河卡"] and is_int(r["data"][0]["updated_at"]),
               "query %r" % r)
        r = call("kb.synonyms.update", groups=[{"id": gid, "words": ["星尘卡", "银河卡", "星河卡"]},
                                               {"id": NO_SUCH_ID, "words": ["a", "b"]}, {"words": ["a", "b"]}])
        check_batch(r, 3, "kb.synonyms.update")
        entry_ok(r, 0, "updated", "group")
        entry_error(r, 1, 404, "not_found", "unknown group")
        entry_error(r, 2, 400, "missing_argument", "no id")
        expect(call("kb.synonyms.query", keyword="星河")["total"] == 1, "update not stored")
        r = call("kb.synonyms.delete", ids=[gid, NO_SUCH_ID])
        expect(r == {"deleted": 1, "not_found": [NO_SUCH_ID]}, "delete %r" % r)
        expect(call("kb.synonyms.query")["total"] == 0, "group still there")
        return "exact match %.2f s after the group was created" % waited
    run_check("kb.synonyms.*: a group widens matching", synonyms)

    def deletes():
        r = call("kb.item.delete", ids=[st["mall"], NO_SUCH_ID])
        expect(r == {"deleted": 1, "not_found": [NO_SUCH_ID]}, "item delete %r" % r)
        expect(call("kb.item.query", ids=[st["mall"]])["total"] == 0, "item still there")
        expect_error(lambda: call("kb.item.delete", ids=list(range(1, 52))), 413, "too_large", "51 ids")
        expect_error(lambda: call("kb.item.delete", ids=[1.5]), 400, "invalid_param", "float id")
        expect_error(lambda: call("kb.item.delete"), 400, "missing_argument", "no ids")
        expect_error(lambda: call("kb.category.delete", ids=[st["top"]], items="keep"), 400,
                     "invalid_param", "items keep")
        # The top category, its subcategories (积分, 权益, 商城, 入口) go; their items stay.
        r = call("kb.category.delete", ids=[st["top"], NO_SUCH_ID])
        expect(r == {"deleted_categories": 5, "items_moved": 2, "items_deleted": 0,
                     "not_found": [NO_SUCH_ID]}, "category delete %r" % r)
        it = call("kb.item.query", ids=[st["card"]])["data"][0]
        expect(it["category_id"] == 0 and it["category"] == "", "item kept its category %r" % it)
        r, _ = chat_until(kc, q, lambda r: answered_by(st["card"])(r)
                          and r["sources"][0]["category"] == "", bot_id=bot)
        r = call("kb.category.create", categories=[{"name": "临时"}])
        tmp = entry_ok(r, 0, "created", "temporary category")
        call("kb.item.update", items=[{"id": st["perk"], "category_id": tmp}])
        r = call("kb.category.delete", ids=[tmp], items="delete")
        expect(r == {"deleted_categories": 1, "items_moved": 0, "items_deleted": 1, "not_found": []},
               "delete with items %r" % r)
        expect(call("kb.item.query", ids=[st["perk"]])["total"] == 0, "item not deleted")
    run_check("kb.item.delete and kb.category.delete", deletes)

    def invalidate_without_cache():
        r = kc.call("cache.invalidate", {})
        expect(r == {"removed": 0}, "cache.invalidate %r" % r)
        c = kc.stats()["cache"]
        check_fields(c, {"entries": int, "bytes": int, "max_bytes": int, "hits": int, "misses": int,
                         "hit_rate": float}, "stats.cache")
        expect(c["max_bytes"] == 0 and c["entries"] == 0 and c["hits"] == 0, "cache off: %r" % c)
    run_check("cache off (--cache-mb 0): nothing cached", invalidate_without_cache)


def run_cache(kc, broker):
    """A third broker with a hot-answer cache (12.7) and one worker."""
    bot = "conf-cache"
    q = "会员日是哪天？"
    default = "每月18日是会员日，全场会员价。"
    vip = "VIP会员日：每月18日领满200减30券。"
    style = {"text": "每月18日 会员日", "color": "#722ED1"}
    st = {}

    def ready():
        deadline = time.monotonic() + 10
        while True:
            expect(broker.poll() is None, "broker exited with %s" % broker.returncode)
            try:
                if kc.call("health", timeout_s=1.0).get("workers") == 1:
                    break
            except KefuTimeout:
                pass
            expect(time.monotonic() < deadline, "no worker")
            time.sleep(0.1)
        r = kc.call("kb.item.create", {"bot_id": bot, "items": [
            {"external_id": "vip-day", "question": q, "answer": default,
             "response_type": "style_text", "response_content": style,
             "variants": [{"labels": {"vip": "true"}, "answer": vip}]}]})
        st["item"] = entry_ok(r, 0, "created", "cache item")
        r, _ = chat_until(kc, q, answered_by(st["item"]), bot_id=bot)
        expect(r["cached"] is False, "first answer cached?!")
    run_check("cache broker ready, item answered", ready)

    def hit():
        # The same question, normalized ("？" does not count); a worker still on an older
        # version answers uncached until it has the current one. A new session each time: the
        # same question a second time in a row is left to the worker (12.7).
        r, waited = chat_until(kc, "会员日是哪天", lambda r: r["cached"], bot_id=bot,
                               user_id="cache-user")
        check_chat_result(r, "cached result", streamed=False)
        expect(r["reply"] == default and r["response_type"] == "style_text"
               and r["response_content"] == style and r["intent"] == "knowledge_qa"
               and answered_by(st["item"])(r) and r["suggestions"] == []
               and r["escalate_to_human"] is False and r["failed_attempts"] == 0
               and r["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
               "cached result %r" % r)
        # Another question first, so that the hit below is not a repeat in its session
        s = r["session_id"]
        n = kc.chat("你好", session_id=s)["turn_count"]
        r2 = kc.chat(q, session_id=s, labels={"vip": "true"})
        expect(r2["cached"] is True and r2["reply"] == vip and r2["response_type"] == "text"
               and r2["response_content"] is None, "labels on a hit: %r" % r2)
        expect(r2["turn_count"] == n + 1, "turn_count %r after %r" % (r2["turn_count"], n))
        m = kc.message_get(r2["message_id"])
        expect(m["content"] == vip and m["status"] == "ok" and m["role"] == "assistant", "stored %r" % m)
        h = kc.history(s)
        expect(h["data"][-2]["content"] == q and h["data"][-1]["id"] == r2["message_id"],
               "history %r" % h["data"][-2:])
        return "first hit after %.2f s" % waited
    run_check("cache hit: labels, stored as a turn", hit)

    def streamed_hit():
        sr = kc.chat_stream(q, bot_id=bot)
        expect(sr.complete, "incomplete")
        check_chat_result(sr.result, "cached stream", streamed=True)
        ev = [e["event"] for e in sr.events]
        expect(ev == ["meta", "token", "done"] and sr.result["last_seq"] == 2, "events %r" % ev)
        expect(sr.events[1]["content"] == default and sr.events[2]["cached"] is True
               and sr.result["cached"] is True and sr.events[2]["response_content"] == style,
               "events %r" % sr.events)
        c = kc.stats()["cache"]
        check_fields(c, {"entries": int, "bytes": int, "max_bytes": int, "hits": int, "misses": int,
                         "hit_rate": float}, "stats.cache")
        expect(c["max_bytes"] == 8 * 1048576 and c["entries"] >= 1 and c["hits"] >= 3
               and 0.0 < c["hit_rate"] <= 1.0
               and abs(c["hit_rate"] - c["hits"] / (c["hits"] + c["misses"])) < 1e-9, "stats %r" % c)
        return "stats.cache %r" % c
    run_check("cache hit streamed: meta, one token, done", streamed_hit)

    def never_stale():
        r = kc.call("kb.item.update", {"bot_id": bot, "items": [
            {"id": st["item"], "answer": "新版：每月18日是会员日。"}]})
        expect(r["updated"] == 1, "update %r" % r)
        t0 = time.monotonic()
        seen_cached = 0
        while True:
            r = kc.chat(q, bot_id=bot)
            new = r["reply"].startswith("新版")
            expect(new or not r["cached"], "cached answer from before the edit: %r" % r["reply"])
            seen_cached += r["cached"]
            if new and r["cached"]:
                break
            expect(time.monotonic() - t0 < 3, "no cached new answer within 3 s")
            time.sleep(0.05)
        return "new answer cached after %.2f s" % (time.monotonic() - t0)
    run_check("cache never serves an answer from before an edit", never_stale)

    def invalidate():
        r = kc.call("cache.invalidate", {"bot_id": bot})
        expect(set(r) == {"removed"} and r["removed"] >= 1, "invalidate %r" % r)
        r = kc.chat(q, bot_id=bot)
        expect(r["cached"] is False and r["reply"].startswith("新版"), "after invalidate %r" % r)
        expect(kc.call("cache.invalidate", {"bot_id": "no-such-bot"}) == {"removed": 0}, "other bot")
        r = kc.call("cache.invalidate", {})
        expect(is_int(r.get("removed")), "all bots %r" % r)
        expect(kc.stats()["cache"]["entries"] == 0, "entries left")
        expect_error(lambda: kc.call("cache.invalidate", {"bot_id": 5}), 400, "invalid_param",
                     "bot_id int")
    run_check("cache.invalidate", invalidate)


if __name__ == "__main__":
    sys.exit(main())
