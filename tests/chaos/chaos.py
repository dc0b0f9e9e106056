#!/usr/bin/env python3
"""chaos.py - sustained chat load (plain and streamed, new and existing sessions) while local
workers are killed with SIGKILL every few hundred milliseconds. Every request must get exactly one
reply, and the broker must exit cleanly afterwards (under the sanitizers: no leak, no error).

    chaos.py BUILD_DIR SAMPLE_KB.jsonl SECONDS

Exits 77 (skipped) without Debian's python3-zmq and python3-msgpack.
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

try:
    import msgpack
    import zmq
except ImportError:
    sys.exit(77)

QUESTIONS = ["怎么申请退货？", "发票怎么开", "你是谁", "运费多少钱", "今天天气怎么样", "转人工"]
IN_FLIGHT = 200                 # requests outstanding at most


def start_broker(build, folder):
    endpoints = {name: f"ipc://{folder}/{name}" for name in ("requests", "streams", "workers")}
    log = open(f"{folder}/broker.log", "w")
    broker = subprocess.Popen(
        [f"{build}/kefu-broker", "--requests", endpoints["requests"], "--streams", endpoints["streams"],
         "--workers-endpoint", endpoints["workers"], "--db", f"{folder}/kefu.db", "--workers", "3",
         "--heartbeat-ms", "100", "--pace-ms", "2", "--job-timeout-ms", "3000",
         "--stream-wait-ms", "200", "--max-pending", "300", "--cache-mb", "0"],
        stdout=log, stderr=log)
    return broker, endpoints


def call(dealer, rid, method, params):
    dealer.send_multipart([b"KEFU1", msgpack.packb({"id": rid, "method": method, "params": params})])
    return msgpack.unpackb(dealer.recv_multipart()[1])


def kill_a_worker(broker):
    pids = subprocess.run(["pgrep", "-P", str(broker.pid)], capture_output=True, text=True).stdout.split()
    if pids:
        os.kill(int(random.choice(pids)), signal.SIGKILL)


def main():
    build, sample, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    folder = tempfile.mkdtemp(prefix="kefu-chaos-")
    broker, endpoints = start_broker(build, folder)
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.connect(endpoints["requests"])
    sub = context.socket(zmq.SUB)
    sub.connect(endpoints["streams"])
    sub.setsockopt(zmq.SUBSCRIBE, b"st-")
    time.sleep(1.0)

    items = [json.loads(line) for line in open(sample) if line.strip()]
    assert call(dealer, "kb", "kb.item.create", {"items": items})["ok"]
    time.sleep(0.6)
    sessions = [call(dealer, f"session-{i}", "session.create", {})["result"]["session_id"]
                for i in range(20)]

    sent, replies, duplicates, events, count = {}, {}, 0, 0, 0
    end = time.time() + seconds
    next_kill = time.time() + 0.3
    while time.time() < end or (len(replies) < len(sent) and time.time() < end + 8):
        now = time.time()
        if now < end and len(sent) - len(replies) < IN_FLIGHT:
            count += 1
            is_stream = count % 3 == 0
            rid = f"st-{count}" if is_stream else f"r-{count}"
            params = {"message": random.choice(QUESTIONS), "stream": is_stream}
            if count % 2:
                params["session_id"] = random.choice(sessions)
            dealer.send_multipart([b"KEFU1", msgpack.packb({"id": rid, "method": "chat", "params": params})])
            sent[rid] = now
        if now < end and now > next_kill:
            kill_a_worker(broker)
            next_kill = now + random.uniform(0.2, 0.6)
        while dealer.poll(0):
            reply = msgpack.unpackb(dealer.recv_multipart()[1])
            duplicates += reply["id"] in replies
            replies[reply["id"]] = reply
        while sub.poll(0):
            sub.recv_multipart()
            events += 1
        time.sleep(0.0005)

    missing = [rid for rid in sent if rid not in replies]
    outcomes = {}
    for reply in replies.values():
        name = "ok" if reply["ok"] else reply["error"]["name"]
        outcomes[name] = outcomes.get(name, 0) + 1
    print(f"chaos: {len(sent)} sent, {len(replies)} replies, {duplicates} duplicates, "
          f"{len(missing)} missing, {events} stream events, outcomes {outcomes}")
    broker.send_signal(signal.SIGTERM)
    code = broker.wait(timeout=10)
    print(f"chaos: broker exit status {code}")
    is_good = not missing and not duplicates and code == 0
    if is_good:
        subprocess.run(["rm", "-rf", folder])
    else:
        print(f"chaos: kept {folder} (broker.log)")
    return 0 if is_good else 1


if __name__ == "__main__":
    sys.exit(main())
