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
}
MESSAGE_FIELDS = {
    "id": int, "session_id": str, "role": str, "content": str, "response_type": str,
    "status": str, "usage": dict, "created_at": int,
}
INTENTS = {"knowledge_qa", "chitchat", "transfer_to_human"}
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
    expect(r["response_type"] == "text", "%s.response_type %r" % (where, r["response_type"]))
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
        broker2, client2 = start_broker("idle", ["--workers", "0", "--max-pending", "1",
                                                 "--job-timeout-ms", str(IDLE_TIMEOUT_MS)])
        run_idle(client2(), broker2)
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


if __name__ == "__main__":
    sys.exit(main())
