"""A small Python 3 client for kefu's client protocol KEFU1.

Written from schemas/PROTOCOL.md alone (sections 1-6): a DEALER for requests and replies, a SUB for
token streams, MessagePack bodies, request ids matched to replies, and the streamed-chat algorithm of
section 3.7 (subscribe before send, exact-topic filtering, seq ordering, gap repair with
`stream.fetch`, completion by `last_seq`), plus a TopicWatcher for the handoff topics of sections
3.9 and 13.3 (`agent.escalations`, `agent.messages`, `session.<id>`), and CURVE (section 17): the
broker's public key and the client's own key pair on both sockets, a socket monitor telling a
refused key from a slow broker, and sends that never block on a socket left without a peer.

Needs pyzmq and msgpack (Debian: python3-zmq, python3-msgpack).
"""

import itertools
import secrets
import time

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

SIGNATURE = b"KEFU1"
DEFAULT_TIMEOUT_S = 35.0       # longer than the broker's 30 s chat deadline (3.6)
GRACE_S = 1.0                  # wait for last_seq after the reply before fetching (3.7)


class KefuError(Exception):
    """An error reply or an `error` stream event (section 6)."""

    def __init__(self, code, name, message, retry_after_ms=None, request_id=None, events=None):
        super().__init__("%s %s: %s" % (code, name, message))
        self.code = code
        self.name = name
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.request_id = request_id
        self.events = events or []      # streamed chat: events delivered before the failure

    @classmethod
    def from_map(cls, err, request_id=None, events=None):
        if not isinstance(err, dict):
            return cls(None, "malformed_error", repr(err), request_id=request_id, events=events)
        return cls(err.get("code"), err.get("name"), err.get("message"),
                   err.get("retry_after_ms"), request_id, events)


class KefuTimeout(Exception):
    """No reply within the client-side timeout."""


class KefuHandshakeError(KefuTimeout):
    """No reply, and the DEALER's monitor saw the CURVE handshake fail (17.5): `refused` when the
    broker refused this client's key (HANDSHAKE_FAILED_AUTH), else a wrong broker key or CURVE on
    one side only. `events` holds the failures seen, as (event, value) pairs."""

    def __init__(self, what, events):
        self.refused = any(e == zmq.EVENT_HANDSHAKE_FAILED_AUTH for e, _ in events)
        self.events = list(events)
        super().__init__("%s: CURVE handshake %s" % (
            what, "refused by the broker (key not authorized)" if self.refused else "failed"))


HANDSHAKE_FAILURES = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_monitors = itertools.count(1)      # every monitor needs an inproc name of its own (17.5)


def new_id():
    """32 random lowercase hex characters: fixed length, so no id is a prefix of another (3.1)."""
    return secrets.token_hex(16)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    # Lenient: error.message may end in a truncated UTF-8 sequence (1.3, 6.1).
    return msgpack.unpackb(data, raw=False, unicode_errors="replace")


class StreamResult:
    """Outcome of a streamed chat."""

    def __init__(self, request_id):
        self.request_id = request_id
        self.result = None          # the chat result (reply's result, incl. last_seq)
        self.reply = None           # the whole reply map
        self.events = []            # events delivered, in seq order
        self.complete = False       # every seq 0..last_seq delivered
        self.fetch_calls = 0        # stream.fetch calls made for repair
        self.gaps_detected = 0      # live events that arrived ahead of the expected seq
        self.foreign_messages = 0   # SUB messages ignored because the topic was not exactly ours
        self.live_seqs = []         # seqs as they arrived live on the SUB (before de-duplication)

    @property
    def text(self):
        return "".join(e.get("content", "") for e in self.events if e.get("event") == "token")


class KefuClient:
    """server_key: the broker's CURVE public key (17.1), None for a plain broker; public_key and
    secret_key: this client's key pair (Z85 bytes), made fresh when not given. watch_handshakes: a
    monitor on the DEALER, so that a call left without a reply says why (KefuHandshakeError)."""

    def __init__(self, requests_endpoint="tcp://127.0.0.1:7700",
                 streams_endpoint="tcp://127.0.0.1:7701", context=None,
                 timeout_s=DEFAULT_TIMEOUT_S, server_key=None, public_key=None, secret_key=None,
                 watch_handshakes=False):
        self.ctx = context or zmq.Context.instance()
        self.timeout_s = timeout_s
        self.endpoints = (requests_endpoint, streams_endpoint)
        self.public_key = None
        self._curve = None
        if server_key is not None:
            if public_key is None:
                public_key, secret_key = zmq.curve_keypair()
            self.public_key = public_key
            self._curve = (server_key, public_key, secret_key)
        self.dealer = self._socket(zmq.DEALER)
        self.monitor = None
        self._failures = []         # handshake failures seen since the last reply
        if watch_handshakes:
            # Before connect, or the first handshake's events are missed (17.5)
            name = "inproc://kefu-client-monitor-%d-%d" % (id(self), next(_monitors))
            self.dealer.monitor(name, HANDSHAKE_FAILURES)
            self.monitor = self.ctx.socket(zmq.PAIR)
            self.monitor.setsockopt(zmq.LINGER, 0)
            self.monitor.connect(name)
        self.dealer.connect(requests_endpoint)
        self.sub = None
        if streams_endpoint:
            self.sub = self._socket(zmq.SUB)
            self.sub.connect(streams_endpoint)
        self._stash = {}            # replies that arrived for other requests of ours, by id

    def _socket(self, kind):
        """A socket with linger 0 and, over CURVE, the three keys of 17.2 (set before connect)."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if self._curve is not None:
            sock.setsockopt(zmq.CURVE_SERVERKEY, self._curve[0])
            sock.setsockopt(zmq.CURVE_PUBLICKEY, self._curve[1])
            sock.setsockopt(zmq.CURVE_SECRETKEY, self._curve[2])
        return sock

    def close(self):
        if self.monitor is not None:
            self.monitor.close(0)
        self.dealer.close(0)
        if self.sub is not None:
            self.sub.close(0)

    def reconnect(self):
        """Connect both sockets again (17.5): ZeroMQ never retries a handshake the broker refused,
        so a key authorized since gets in only this way."""
        for sock, endpoint in ((self.dealer, self.endpoints[0]), (self.sub, self.endpoints[1])):
            if sock is None:
                continue
            try:
                sock.disconnect(endpoint)
            except zmq.ZMQError:
                pass                # ZeroMQ may have forgotten the endpoint already
            sock.connect(endpoint)

    def handshake_failures(self):
        """The DEALER's handshake failures (event, value) seen since the last reply (17.5)."""
        while self.monitor is not None and self.monitor.poll(0):
            ev = recv_monitor_message(self.monitor)
            if ev["event"] & HANDSHAKE_FAILURES:
                self._failures.append((ev["event"], ev["value"]))
        return list(self._failures)

    def _no_reply(self, what):
        """What to raise when no reply came (or a send found no peer)."""
        failures = self.handshake_failures()
        if failures:
            return KefuHandshakeError(what, failures)
        return KefuTimeout(what)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- raw requests and replies

    def send_frames(self, frames):
        """Send any multipart message on the DEALER (for testing malformed requests)."""
        self.dealer.send_multipart(frames)

    def send_request(self, method, params=None, request_id=None, timeout_s=None):
        """Send a request; return its id. Does not wait for the reply. Never blocks for long: a
        DEALER left without a peer (a refused CURVE handshake, 17.5) would block a plain send for
        ever, so it waits for room at most the timeout, then raises KefuTimeout."""
        rid = request_id if request_id is not None else new_id()
        body = {"id": rid, "method": method, "params": params if params is not None else {}}
        frames = [SIGNATURE, pack(body)]
        try:
            self.dealer.send_multipart(frames, zmq.DONTWAIT)
        except zmq.Again:
            wait = self.timeout_s if timeout_s is None else timeout_s
            if not self.dealer.poll(max(0, int(wait * 1000)), zmq.POLLOUT):
                raise self._no_reply("cannot send %r: no connection to the broker" % (rid,))
            self.dealer.send_multipart(frames, zmq.DONTWAIT)
        return rid

    def _recv_reply(self, timeout_s):
        """Read one reply message from the DEALER; None on timeout."""
        if not self.dealer.poll(max(0, int(timeout_s * 1000))):
            return None
        frames = self.dealer.recv_multipart()
        self._failures = []         # the broker answers: the handshake held
        if len(frames) != 2 or frames[0] != SIGNATURE:
            raise ValueError("malformed reply frames: %r" % (frames,))
        return unpack(frames[1])

    def wait_reply(self, request_id, timeout_s=None):
        """Return the raw reply map for request_id (3.8); replies for other ids are stashed."""
        if request_id in self._stash:
            return self._stash.pop(request_id)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._no_reply("no reply to %r" % (request_id,))
            r = self._recv_reply(left)
            if r is None:
                continue
            rid = r.get("id") if isinstance(r, dict) else None
            if rid == request_id:
                return r
            self._stash[rid] = r

    def call_raw(self, method, params=None, request_id=None, timeout_s=None):
        rid = self.send_request(method, params, request_id, timeout_s)
        return self.wait_reply(rid, timeout_s)

    def call(self, method, params=None, request_id=None, timeout_s=None):
        """Non-streamed request (3.8): the result, or KefuError."""
        r = self.call_raw(method, params, request_id, timeout_s)
        if r.get("ok") is True:
            return r.get("result")
        raise KefuError.from_map(r.get("error"), r.get("id"))

    # ---------------------------------------------------------------- methods

    def health(self):
        return self.call("health")

    def stats(self):
        return self.call("stats")

    def session_create(self, **params):
        return self.call("session.create", params)

    def history(self, session_id, **params):
        params["session_id"] = session_id
        return self.call("history", params)

    def message_get(self, message_id):
        return self.call("message.get", {"message_id": message_id})

    def stream_fetch(self, stream_id, from_seq=0):
        return self.call("stream.fetch", {"stream_id": stream_id, "from_seq": from_seq})

    def kb_item_create(self, items, bot_id=None):
        params = {"items": items}
        if bot_id is not None:
            params["bot_id"] = bot_id
        return self.call("kb.item.create", params)

    def chat(self, message, **params):
        """Non-streamed chat: the result map."""
        params["message"] = message
        params.pop("stream", None)
        return self.call("chat", params)

    # Handoff to people (4.32-4.36, section 13)
    def handoff_request(self, session_id, **params):
        params["session_id"] = session_id
        return self.call("handoff.request", params)

    def agent_assign(self, agent_id, **params):
        params["agent_id"] = agent_id
        return self.call("agent.assign", params)

    def agent_reply(self, session_id, agent_id, content, **params):
        params.update(session_id=session_id, agent_id=agent_id, content=content)
        return self.call("agent.reply", params)

    def agent_resolve(self, session_id, agent_id, **params):
        params.update(session_id=session_id, agent_id=agent_id)
        return self.call("agent.resolve", params)

    def escalations_list(self, **params):
        return self.call("escalations.list", params)

    # Intents, chit-chat and tickets (4.37-4.43, sections 15 and 16)
    def intent_execute(self, intent, **params):
        params["intent"] = intent
        return self.call("intent.execute", params)

    def tickets_query(self, **params):
        return self.call("tickets.query", params)

    def tickets_update(self, status, **params):
        params["status"] = status
        return self.call("tickets.update", params)

    # ---------------------------------------------------------------- streamed chat (3.7)

    def chat_stream(self, message, on_event=None, request_id=None, timeout_s=None,
                    subscribe_delay_s=None, **params):
        """Streamed chat following section 3.7. Returns a StreamResult; raises KefuError on an
        error reply (its .events holds what was delivered) and KefuTimeout when neither a reply nor
        a terminal event could be obtained.

        subscribe_delay_s is for testing only: it subscribes that long AFTER sending, which breaks
        step 2 on purpose to exercise the broker's hold (3.2) and gap repair (3.5)."""
        if self.sub is None:
            raise ValueError("client has no stream socket")
        rid = request_id if request_id is not None else new_id()
        params = dict(params)
        params["message"] = message
        params["stream"] = True
        if subscribe_delay_s is None:
            self.sub.setsockopt(zmq.SUBSCRIBE, rid.encode("utf-8"))
            self.send_request("chat", params, rid)
        else:
            self.send_request("chat", params, rid)
            time.sleep(subscribe_delay_s)
            self.sub.setsockopt(zmq.SUBSCRIBE, rid.encode("utf-8"))
        try:
            return self.follow_stream(rid, on_event, timeout_s)
        finally:
            self.sub.setsockopt(zmq.UNSUBSCRIBE, rid.encode("utf-8"))

    def follow_stream(self, rid, on_event=None, timeout_s=None):
        """Steps 4-5 of 3.7 for a chat already sent with id rid (SUB already subscribed)."""
        topic = rid.encode("utf-8")
        out = StreamResult(rid)
        state = {"next": 0}
        held = {}
        reply = None
        last_seq = None
        grace_end = None
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)

        def offer(ev):
            if not isinstance(ev, dict) or not isinstance(ev.get("seq"), int):
                return
            s = ev["seq"]
            if s < state["next"] or s in held:
                return
            held[s] = ev
            while state["next"] in held:
                e = held.pop(state["next"])
                out.events.append(e)
                if on_event is not None:
                    on_event(e)
                state["next"] += 1

        def fetch():
            out.fetch_calls += 1
            try:
                res = self.stream_fetch(rid, state["next"])
            except (KefuError, KefuTimeout):
                return
            for ev in res.get("data") or []:
                offer(ev)

        def take_reply(r):
            nonlocal reply, last_seq, grace_end
            reply = r
            out.reply = r
            if r.get("ok") is True:
                out.result = r.get("result")
                last_seq = out.result.get("last_seq")
                grace_end = time.monotonic() + GRACE_S

        def terminal():
            return next((e for e in out.events if e.get("event") in ("done", "error")), None)

        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.dealer, zmq.POLLIN)

        while True:
            # A reply for us may have been stashed while a nested stream.fetch was waiting.
            if reply is None and rid in self._stash:
                take_reply(self._stash.pop(rid))
            now = time.monotonic()
            if reply is not None and reply.get("ok") is True and isinstance(last_seq, int) \
                    and state["next"] > last_seq:
                out.complete = True
                break
            if reply is not None and reply.get("ok") is not True:
                raise KefuError.from_map(reply.get("error"), rid, out.events)
            if reply is not None and now >= grace_end:
                fetch()
                out.complete = isinstance(last_seq, int) and state["next"] > last_seq
                break
            if reply is None and now >= deadline:
                fetch()
                t = terminal()
                if t is not None and t.get("event") == "error":
                    raise KefuError.from_map(t.get("error"), rid, out.events)
                if t is not None:
                    res = {k: v for k, v in t.items() if k not in ("seq", "event")}
                    res["last_seq"] = t["seq"]
                    out.result = res
                    out.complete = True
                    break
                raise KefuTimeout("no reply or terminal event for stream %s; read history" % rid)
            until = grace_end if reply is not None else deadline
            ready = dict(poller.poll(max(1, int((until - now) * 1000))))
            if self.sub in ready:
                gap = False
                while self.sub.poll(0):
                    frames = self.sub.recv_multipart()
                    if len(frames) != 2 or frames[0] != topic:
                        out.foreign_messages += 1
                        continue
                    ev = unpack(frames[1])
                    if isinstance(ev, dict) and isinstance(ev.get("seq"), int):
                        out.live_seqs.append(ev["seq"])
                        if ev["seq"] > state["next"] and ev["seq"] not in held:
                            gap = True
                    offer(ev)
                if gap and any(s > state["next"] for s in held):
                    out.gaps_detected += 1
                    fetch()
            if self.dealer in ready:
                while self.dealer.poll(0):
                    r = self._recv_reply(0)
                    if r is None:
                        break
                    if r.get("id") != rid:
                        self._stash[r.get("id")] = r
                        continue
                    take_reply(r)
        return out


HANDOFF_TOPIC_PREFIXES = ("agent.", "session.")   # 3.1: never a streamed chat's id


class TopicWatcher:
    """A SUB socket of its own watching the handoff topics (3.9, 13.3): `agent.escalations`,
    `agent.messages` and `session.<session_id>`. Their events have no seq, are not held for a
    subscriber and not retained, so: subscribe first, then act; after a reconnect read the state
    back (escalations.list, history). Frame 0 is compared exactly with the topics wanted (3.3)."""

    def __init__(self, streams_endpoint, context=None):
        self.ctx = context or zmq.Context.instance()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(streams_endpoint)
        self.prefixes = set()
        self.backlog = []           # (topic, event) received and not yet taken, in arrival order

    def close(self):
        self.sub.close(0)

    def subscribe(self, prefix):
        self.sub.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))
        self.prefixes.add(prefix)

    def unsubscribe(self, prefix):
        self.sub.setsockopt(zmq.UNSUBSCRIBE, prefix.encode("utf-8"))
        self.prefixes.discard(prefix)

    def sync(self, client, timeout_s=3.0):
        """Make sure the subscriptions made so far are in effect at the broker. A SUB socket's
        subscriptions reach the broker in order, and the broker holds a streamed chat's events
        until it has seen the exact subscription to its id (3.2). So: subscribe this socket to a
        fresh id, stream a chat with it, and wait for its first event; every earlier
        subscription of the socket has then reached the broker."""
        rid = new_id()
        self.sub.setsockopt(zmq.SUBSCRIBE, rid.encode("utf-8"))
        try:
            client.send_request("chat", {"message": "你好", "stream": True}, rid)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if not self.sub.poll(50):
                    continue
                frames = self.sub.recv_multipart()
                if len(frames) == 2 and frames[0] == rid.encode("utf-8"):
                    break
                self._keep(frames)
            else:
                raise KefuTimeout("subscription barrier: no event for %s" % rid)
            client.wait_reply(rid, timeout_s)
        finally:
            self.sub.setsockopt(zmq.UNSUBSCRIBE, rid.encode("utf-8"))

    def _keep(self, frames):
        if len(frames) != 2:
            return
        try:
            topic = frames[0].decode("utf-8")
        except UnicodeDecodeError:
            return
        if not topic.startswith(HANDOFF_TOPIC_PREFIXES):
            return                  # a chat stream (a barrier's), not a handoff topic
        if not any(topic.startswith(p) for p in self.prefixes):
            return
        ev = unpack(frames[1])
        if isinstance(ev, dict):
            self.backlog.append((topic, ev))

    def pump(self, timeout_s=0.0):
        """Read what is there (waiting at most timeout_s for the first message)."""
        if self.sub.poll(int(timeout_s * 1000)):
            while self.sub.poll(0):
                self._keep(self.sub.recv_multipart())

    def take(self, topic, pred=None, timeout_s=2.0):
        """The first event on exactly `topic` (matching pred) from the backlog or the socket;
        KefuTimeout when none comes within timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            for i, (t, ev) in enumerate(self.backlog):
                if t == topic and (pred is None or pred(ev)):
                    del self.backlog[i]
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise KefuTimeout("no event on %s" % topic)
            self.pump(left)

    def take_all(self, topic=None):
        """Every event received so far (on exactly `topic`, or on any); removes them."""
        self.pump(0)
        got = [(t, ev) for t, ev in self.backlog if topic is None or t == topic]
        self.backlog = [(t, ev) for t, ev in self.backlog if not (topic is None or t == topic)]
        return got
