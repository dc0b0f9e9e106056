#!/usr/bin/env python3
"""kb_remote_bench.py - the knowledge base over the worker protocol at scale (BENCHMARKS.md,
"Knowledge base over the worker protocol").

    tests/bench/kb_remote_bench.py BUILD_DIR [ITEMS] [REMOTE_WORKERS]

Generates ITEMS items (default 100,000) with kb_gen, imports them into a broker started with
--workers 0 (no worker connected: no snapshot is built during the import), then measures, in the
same run: a worker with --db (the SQL path, the baseline) from its start to its first answer from
the last item, and a worker with --kb broker (no database) the same way, with the broker's snapshot
build time and size from its log and the broker's memory before and after; then REMOTE_WORKERS
(default 3) more remote workers at once, to show the snapshot is shared, not copied per worker.
"""
import json, os, platform, re, shutil, subprocess, sys, tempfile, time


def rss_kb(pid, key):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main():
    build = os.path.abspath(sys.argv[1])
    items = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    extra = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    work = tempfile.mkdtemp(prefix="kefu-kb-remote-")
    ep = {name: "ipc://%s/%s" % (work, name) for name in ("r", "s", "w")}
    db = os.path.join(work, "kefu.db")
    items_path = os.path.join(work, "items.jsonl")
    subprocess.run([os.path.join(build, "tests", "kb_gen"), "--items", str(items), items_path],
                   check=True, stdout=subprocess.DEVNULL)
    with open(items_path) as f:
        last = json.loads(f.read().rstrip("\n").rsplit("\n", 1)[-1])
    procs = []

    def spawn(args, log):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        procs.append(proc)
        return proc

    def kefuctl(*args):
        return subprocess.run([os.path.join(build, "kefuctl"), "--requests", ep["r"],
                               "--streams", ep["s"]] + list(args), capture_output=True, text=True)

    def workers():
        out = kefuctl("call", "health", "{}")
        try:
            return json.loads(out.stdout).get("workers", 0)
        except ValueError:
            return -1

    def wait_workers(n):
        while workers() != n:
            time.sleep(0.05)

    def first_answer(start):
        """Seconds from `start` until a chat gives the last item's answer"""
        params = json.dumps({"message": last["question"]}, ensure_ascii=False)
        while True:
            out = kefuctl("call", "chat", params)
            if out.returncode == 0 and last["answer"][:20] in out.stdout:
                return time.monotonic() - start
            time.sleep(0.02)

    try:
        broker = spawn([os.path.join(build, "kefu-broker"), "--requests", ep["r"], "--streams", ep["s"],
                        "--workers-endpoint", ep["w"], "--db", db, "--workers", "0", "--cache-mb", "0"],
                       os.path.join(work, "broker.log"))
        while workers() < 0:
            time.sleep(0.05)
        started = time.monotonic()
        kefuctl("kb", "import", items_path)
        import_s = time.monotonic() - started
        rss_before = rss_kb(broker.pid, "VmRSS")
        worker_bin = os.path.join(build, "kefu-worker")

        # Baseline: the SQL path, a worker reading the database file
        started = time.monotonic()
        local = spawn([worker_bin, "--broker", ep["w"], "--db", db, "--kb", "db"], os.path.join(work, "local.log"))
        sql_s = first_answer(started)
        sql_hwm = rss_kb(local.pid, "VmHWM")
        local.terminate()
        local.wait()
        wait_workers(0)

        # The remote path: no database, the knowledge base comes from the broker
        started = time.monotonic()
        remote = spawn([worker_bin, "--broker", ep["w"], "--kb", "broker", "--db", "/nonexistent/kefu.db"],
                       os.path.join(work, "remote.log"))
        remote_s = first_answer(started)
        remote_hwm = rss_kb(remote.pid, "VmHWM")
        rss_one = rss_kb(broker.pid, "VmRSS")
        started = time.monotonic()
        for i in range(extra):
            spawn([worker_bin, "--broker", ep["w"], "--kb", "broker", "--name", "more-%d" % i],
                  os.path.join(work, "more-%d.log" % i))
        wait_workers(1 + extra)
        while True:
            logs = "".join(open(os.path.join(work, "more-%d.log" % i)).read() for i in range(extra))
            if logs.count("items") >= extra and len(re.findall(r"loaded: \d+ items", logs)) >= extra:
                break
            time.sleep(0.05)
        more_s = time.monotonic() - started
        rss_more, hwm = rss_kb(broker.pid, "VmRSS"), rss_kb(broker.pid, "VmHWM")
        broker_log = open(os.path.join(work, "broker.log")).read()
        snap = re.findall(r"snapshot of version (\d+): (\d+) items, (\d+) bytes, built in (\d+) ms", broker_log)
        remote_log = open(os.path.join(work, "remote.log")).read()
        received = re.findall(r"received from the broker: (\d+) bytes in (\d+) ms", remote_log)
        lost = broker_log.count("missed its heartbeats")
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                    if line.startswith("model name")), platform.processor())
        print("command: %s" % " ".join([sys.argv[0]] + sys.argv[1:]))
        print("machine: %s, %d cores, %s" % (cpu, os.cpu_count(), platform.platform()))
        print("items: %d (import %.1f s)" % (items, import_s))
        print("baseline, worker --db (SQL read + build) to first answer: %.2f s" % sql_s)
        print("remote, worker --kb broker to first answer:               %.2f s (%.2fx the baseline)"
              % (remote_s, remote_s / sql_s))
        if snap:
            print("  broker snapshot thread: %s items, %.1f MB, built in %s ms"
                  % (snap[-1][1], int(snap[-1][2]) / 1e6, snap[-1][3]))
        if received:
            print("  transfer to the worker: %.1f MB in %s ms" % (int(received[-1][0]) / 1e6, received[-1][1]))
        print("broker RSS: %.0f MB before, %.0f MB with the snapshot, %.0f MB after %d more remote "
              "workers loaded it (%.1f s), peak %.0f MB" % (rss_before / 1024, rss_one / 1024,
              rss_more / 1024, extra, more_s, hwm / 1024))
        print("worker peak RSS: %.0f MB with --db, %.0f MB with --kb broker" % (sql_hwm / 1024, remote_hwm / 1024))
        print("workers declared lost: %d" % lost)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
