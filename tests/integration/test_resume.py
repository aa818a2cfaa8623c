#!/usr/bin/env python3
"""Integration tests for issue 10: nothing is lost across link flaps (session resume), and
a side that was paused reads what has already arrived before it declares its peer dead.

tcpcan processes over 127.0.0.1 with the stdio CAN port ('-'). Every frame carries a
counter in its data (ID 101 client -> server, ID 202 server -> client), so each far side's
stdout is checked frame by frame: every frame exactly once and in order, or counted.
A relay inside the test (class Relay) sits between client and server and cuts the
connection with an RST (SO_LINGER 0) or a FIN. Python standard library only; the process
helpers come from test_bridge.py.

Usage: test_resume.py [--tcpcan PATH] [unittest names, e.g. TestFlaps or
       TestFlaps.test_rst_every_200_ms]        (PATH also from $TCPCAN)
Prints unittest's summary, then a line "N passed, M failed"; exits non-zero on failure.
"""
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_bridge as tb  # noqa: E402  (Proc, BridgeTest, parse_stats, free_port)

UP_ID = 0x101    # client stdin -> server stdout
DOWN_ID = 0x202  # server stdin -> client stdout
DRAIN_STALL = 15.0   # s without a new frame at a far side, once the feeders are done: give up
DRAIN_TOTAL = 90.0   # s for the far sides to receive everything, once the feeders are done


def frame_line(can_id, i):
    return "%03X#%016X" % (can_id, i)


def counters_of(lines, can_id):
    """The counters of the frames in `lines` (ID#DATA), or raises on a frame of another kind."""
    prefix = "%03X#" % can_id
    out = []
    for n, line in enumerate(lines):
        if not line.startswith(prefix) or len(line) != len(prefix) + 16:
            raise AssertionError("line %d: %r is not a frame %s#<counter>" % (n + 1, line, prefix[:-1]))
        out.append(int(line[len(prefix):], 16))
    return out


def describe_sequence(got, n):
    """'' when got == 0..n-1, else what is wrong with it (duplicates, order, missing)."""
    if got == list(range(n)):
        return ""
    seen, dups, disorder = set(), 0, 0
    first_problem = None
    previous = -1
    for pos, v in enumerate(got):
        if v in seen:
            dups += 1
            first_problem = first_problem or "position %d: %d again" % (pos, v)
        elif v < previous:
            disorder += 1
            first_problem = first_problem or "position %d: %d after %d" % (pos, v, previous)
        seen.add(v)
        previous = max(previous, v)
    missing = sorted(set(range(n)) - seen)
    extra = sorted(v for v in seen if v >= n)
    parts = ["%d frames received of %d sent" % (len(got), n)]
    if dups:
        parts.append("%d duplicates" % dups)
    if disorder:
        parts.append("%d out of order" % disorder)
    if missing:
        parts.append("%d missing (first: %s)" % (len(missing), ", ".join(str(m) for m in missing[:10])))
    if extra:
        parts.append("%d never sent" % len(extra))
    if first_problem:
        parts.append("first problem at " + first_problem)
    return "; ".join(parts)


UNDELIVERABLE_RE = re.compile(r"WARNING [^\n]*?(\d+) frames[^\n]*undeliverable")


def undeliverable_logged(text):
    """The WARNING lines that name undeliverable frames, and the sum of the counts they name."""
    counts = [int(n) for n in UNDELIVERABLE_RE.findall(text)]
    return len(counts), sum(counts)


def in_order_without_duplicates(got):
    return all(b > a for a, b in zip(got, got[1:]))


class Feeder(threading.Thread):
    """Writes frames ID#<counter> to a process's stdin at `rate` frames/s until `count` are
    written or stop() is called. Each frame is written once; a full pipe blocks the feeder
    (the process pushes back), which only slows it down. `sent` is how many were written."""

    def __init__(self, proc, can_id, rate, count):
        super().__init__(daemon=True)
        self.proc, self.can_id, self.rate, self.count = proc, can_id, rate, count
        self.sent = 0
        self.error = None
        self._halt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        batch = max(1, self.rate // 100)
        try:
            while self.sent < self.count and not self._halt.is_set():
                due = min(self.count, int((time.monotonic() - t0) * self.rate) + 1)
                if due <= self.sent:
                    time.sleep(0.005)
                    continue
                end = min(due, self.sent + batch)
                self.proc.send([frame_line(self.can_id, i) for i in range(self.sent, end)])
                self.sent = end
        except (OSError, ValueError) as e:  # the process ended: its stdin is gone
            self.error = repr(e)

    def stop(self):
        self._halt.set()

    def finish(self, timeout=30.0):
        self.stop()
        self.join(timeout)
        return not self.is_alive()


class Relay:
    """A TCP relay on 127.0.0.1: accepts the client, connects to the server, forwards both
    ways, and cuts each connection `lifetime` seconds after it began (None = never) with an
    RST (SO_LINGER 0, mode 'rst') or a FIN (shutdown, mode 'fin'; what arrives afterwards is
    read and thrown away, as a dying middlebox would). Bytes the relay holds when it cuts are
    lost, as on a real link. refuse(True) closes the listening socket (a client's connect()
    is refused, as by a host that is down; not a hang-up after connecting, which a client
    could take for a server that wants version 1); refuse(False) listens on the same port again."""

    BUFFER = 256 * 1024  # bytes held per direction before the relay stops reading that side

    def __init__(self, upstream_port, mode="rst", lifetime=None):
        assert mode in ("rst", "fin")
        self.upstream = ("127.0.0.1", upstream_port)
        self.mode, self.lifetime = mode, lifetime
        self.accepted = self.cuts = 0
        self.gaps = []  # s from a cut of ours to the next connection the client made
        self.last_cut = None
        self.port = 0
        self.listener = self._listen()
        self.port = self.listener.getsockname()[1]
        self.pairs = []  # [client_sock, server_sock, started, {sock: pending bytes to send to it}]
        self.closing = {}  # FIN sent: sock -> time after which it is closed anyway
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        s.setblocking(False)
        return s

    # ---- control
    def refuse(self, refusing):
        with self.lock:
            if refusing and self.listener is not None:
                self.listener.close()
                self.listener = None
            elif not refusing and self.listener is None:
                self.listener = self._listen()

    def cut_all(self):
        with self.lock:
            for pair in list(self.pairs):
                self._cut(pair)

    def close(self):
        self._halt.set()
        self.thread.join(5)
        with self.lock:
            for pair in list(self.pairs):
                self._cut(pair)
            for s in list(self.closing):
                s.close()
            self.closing.clear()
            if self.listener is not None:
                self.listener.close()

    # ---- the loop
    def _other(self, pair, s):
        return pair[1] if s is pair[0] else pair[0]

    def _cut(self, pair):
        self.pairs.remove(pair)
        self.cuts += 1
        self.last_cut = time.monotonic()
        for s in pair[:2]:
            if self.mode == "rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            else:
                try:
                    s.shutdown(socket.SHUT_WR)
                    self.closing[s] = time.monotonic() + 2.0
                except OSError:
                    s.close()

    def _accept(self):
        while True:
            try:
                s, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            try:
                up = socket.create_connection(self.upstream, timeout=2.0)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
                continue
            for x in (s, up):
                x.setblocking(False)
                x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            if self.last_cut is not None:
                self.gaps.append(time.monotonic() - self.last_cut)
                self.last_cut = None
            self.pairs.append([s, up, time.monotonic(), {s: bytearray(), up: bytearray()}])

    def _run(self):
        while not self._halt.is_set():
            with self.lock:
                readers, writers = [self.listener] if self.listener is not None else [], []
                for pair in self.pairs:
                    pending = pair[3]
                    for s in pair[:2]:
                        if len(pending[self._other(pair, s)]) < self.BUFFER:
                            readers.append(s)
                        if pending[s]:
                            writers.append(s)
                readers.extend(self.closing)
            try:
                r, w, _ = select.select(readers, writers, [], 0.01)
            except (OSError, ValueError):
                continue  # a socket closed under us by cut_all(); the next pass has the new set
            with self.lock:
                now = time.monotonic()
                if self.listener is not None and self.listener in r:
                    self._accept()
                for s in list(self.closing):  # FIN sent: read what comes and throw it away
                    done = now >= self.closing[s]
                    if s in r:
                        try:
                            done = done or not s.recv(65536)
                        except OSError:
                            done = True
                    if done:
                        s.close()
                        del self.closing[s]
                for pair in list(self.pairs):
                    if self.lifetime is not None and now - pair[2] >= self.lifetime:
                        self._cut(pair)
                        continue
                    ended = False
                    for s in pair[:2]:
                        other = self._other(pair, s)
                        if s in r:
                            try:
                                data = s.recv(65536)
                            except (BlockingIOError, InterruptedError):
                                data = None
                            except OSError:
                                data = b""
                            if data == b"":
                                ended = True  # a tcpcan side closed: pass the end on
                                break
                            if data:
                                pair[3][other] += data
                        if s in w and pair[3][s]:
                            try:
                                n = s.send(pair[3][s])
                                del pair[3][s][:n]
                            except (BlockingIOError, InterruptedError):
                                pass
                            except OSError:
                                ended = True
                                break
                    if ended:
                        self._cut(pair)
                        self.cuts -= 1  # not our doing
                        self.last_cut = None


class ResumeTest(tb.BridgeTest):
    """Starts the processes and checks the frames at the far sides."""

    def lines_count(self, proc):
        with open(proc.out_path, "rb") as f:
            return f.read().count(b"\n")

    def wait_for_lines(self, procs_and_counts, stall=DRAIN_STALL, total=DRAIN_TOTAL):
        """Waits until each process's stdout holds at least its count of lines; gives up once
        none grew for `stall` s or after `total` s."""
        deadline = time.monotonic() + total
        last = None
        last_change = time.monotonic()
        while True:
            now_counts = [self.lines_count(p) for p, _ in procs_and_counts]
            if all(c >= want for c, (_, want) in zip(now_counts, procs_and_counts)):
                return True
            if now_counts != last:
                last, last_change = now_counts, time.monotonic()
            if time.monotonic() >= deadline or time.monotonic() - last_change >= stall:
                return False
            time.sleep(0.1)

    def received(self, proc, can_id):
        return counters_of(proc.frames(), can_id)

    def assert_exact(self, proc, can_id, n, what):
        got = self.received(proc, can_id)
        problem = describe_sequence(got, n)
        self.assertEqual(problem, "", "%s: %s%s" % (what, problem, self.logs()))

    def stats(self, proc):
        s = tb.parse_stats(proc.err())
        self.assertIsNotNone(s, "%s printed no final stats%s" % (proc.name, self.logs()))
        return s


# ---------------------------------------------------------------------------------------
class TestPauseOrdering(ResumeTest):
    """Item 3 of issue 10: after a pause (SIGSTOP, a suspended laptop), a side reads what has
    already arrived before its dead-after timer can declare the peer dead."""

    def paused_side_reads_first(self, paused_side):
        """`paused_side` ('client' or 'server') alone has a heartbeat (dead after 1 s); it is
        stopped for 2.5 s while the other side sends it frames, then continued."""
        port = tb.free_port()
        hb = ["--heartbeat", "0.3", "--dead-after", "1"]
        # The other side sends no heartbeat and never declares anyone dead; it answers pings.
        server = self.start_server(port, hb if paused_side == "server" else [])
        client = self.start_client(port, hb if paused_side == "client" else [])
        self.wait_agreed(server, 2)
        paused, sender = (client, server) if paused_side == "client" else (server, client)
        can_id = DOWN_ID if paused_side == "client" else UP_ID
        sender.send([frame_line(can_id, 0)])
        self.wait_frames(paused, [frame_line(can_id, 0)])
        n = 200
        paused.p.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.3)  # asleep in epoll_wait
            sender.send([frame_line(can_id, i) for i in range(1, n)])
            time.sleep(2.5)  # well past the dead-after (1 s); the frames wait in the paused side's socket
        finally:
            paused.p.send_signal(signal.SIGCONT)
        self.assertTrue(self.wait_for_lines([(paused, n)], stall=5, total=20),
                        "the frames that waited in the %s's socket did not come out%s" % (paused_side, self.logs()))
        time.sleep(0.5)  # a late 'dead peer' line would show now
        self.assertNotIn("dead peer", paused.err(), "the %s declared its peer dead although its frames had "
                         "arrived%s" % (paused_side, self.logs()))
        self.assertEqual(len(re.findall(r"client \S+ connected", server.err())), 1,
                         "the client reconnected: its first connection was closed" + self.logs())
        self.assert_exact(paused, can_id, n, "frames to the %s across the pause" % paused_side)
        sender.send([frame_line(can_id, n)])
        self.assertTrue(self.wait_for_lines([(paused, n + 1)], stall=5, total=10), self.logs())
        self.assert_exact(paused, can_id, n + 1, "frames to the %s after the pause" % paused_side)
        self.stop(server, client)

    def test_paused_client_reads_before_declaring_the_server_dead(self):
        self.paused_side_reads_first("client")

    def test_paused_server_reads_before_declaring_the_client_dead(self):
        self.paused_side_reads_first("server")


# ---------------------------------------------------------------------------------------
class TestFlaps(ResumeTest):
    """A relay cuts the connection every 200 ms while 5,000 frames/s flow each way for 20 s:
    each far side receives every frame exactly once, in order, and the counters say 0 lost."""

    RATE = 5000
    SECONDS = 20
    LIFETIME = 0.2

    def flaps(self, mode):
        n = self.RATE * self.SECONDS
        port = tb.free_port()
        server = self.start_server(port)
        relay = Relay(port, mode, lifetime=None)
        self.addCleanup(relay.close)
        client = self.start_client(relay.port)
        self.wait_agreed(server, 2)
        relay.lifetime = self.LIFETIME  # from now on every connection lives 200 ms
        up = Feeder(client, UP_ID, self.RATE, n)
        down = Feeder(server, DOWN_ID, self.RATE, n)
        t0 = time.monotonic()
        up.start()
        down.start()
        up.join(self.SECONDS * 3)
        down.join(self.SECONDS * 3)
        fed = time.monotonic() - t0
        done = self.wait_for_lines([(server, n), (client, n)])
        drained = time.monotonic() - t0
        relay.lifetime = None  # let the last connection live, so the statistics can settle
        cuts = relay.cuts
        time.sleep(1.0)  # the last acknowledgements arrive (else a stop counts delivered frames unacknowledged)
        self.assertIsNone(up.error, self.logs())
        self.assertIsNone(down.error, self.logs())
        self.assertEqual((up.sent, down.sent), (n, n), "the feeders did not write everything" + self.logs())
        gaps = sorted(relay.gaps)
        print("\n  %s: %d cuts by the relay, %d connections (cut to reconnection: median %.0f ms, max %.0f ms); "
              "%d frames each way written in %.1f s, all received after %.1f s: %s"
              % (mode.upper(), cuts, relay.accepted, 1000 * gaps[len(gaps) // 2] if gaps else -1,
                 1000 * gaps[-1] if gaps else -1, n, fed, drained, done))
        self.assert_exact(server, UP_ID, n, "client -> server")
        self.assert_exact(client, DOWN_ID, n, "server -> client")
        self.assertGreaterEqual(cuts, self.SECONDS, "the relay hardly cut anything" + self.logs())
        s_stats, c_stats = self.stop(server, client)
        for name, s in (("server", s_stats), ("client", c_stats)):
            print("  %s: lost=%s duplicates=%s dropped=%s resumed=%s replayed=%s undeliverable=%s" % (
                name, s.get("lost"), s.get("duplicates"), s.get("dropped"), s.get("resumed"), s.get("replayed"),
                s.get("undeliverable")))
            for key in ("resumed", "replayed", "undeliverable"):
                self.assertIn(key, s, "%s: no %s= in the final stats line%s" % (name, key, self.logs()))
            self.assertEqual(s["lost"], 0, "%s counted lost frames%s" % (name, self.logs()))
            self.assertEqual(s["dropped"], 0, "%s counted dropped frames%s" % (name, self.logs()))
            self.assertEqual(s["undeliverable"], 0, "%s counted undeliverable frames%s" % (name, self.logs()))
        self.assertGreater(c_stats["resumed"], 0, "the client never resumed a session" + self.logs())
        self.assertGreater(c_stats["replayed"] + s_stats["replayed"], 0, "cuts under traffic and nothing replayed"
                           + self.logs())
        self.assertGreater(s_stats["resumed"], 0, "the server never resumed a session" + self.logs())
        self.assertEqual(c_stats["from_bus"], n, self.logs())
        self.assertEqual(s_stats["from_bus"], n, self.logs())
        self.assertEqual(s_stats["to_bus"], n, self.logs())
        self.assertEqual(c_stats["to_bus"], n, self.logs())

    def test_rst_every_200_ms(self):
        self.flaps("rst")

    def test_fin_every_200_ms(self):
        self.flaps("fin")


# ---------------------------------------------------------------------------------------
class TestPause(ResumeTest):
    """The client (then the server) is stopped (SIGSTOP) for 10 s while frames flow both ways,
    then continued: every frame is delivered exactly once, or counted."""

    RATE = 1000
    BEFORE = 2.0
    PAUSE = 10.0
    AFTER = 3.0

    def test_sigstop_client_for_10_s(self):
        self.sigstop("client")

    def test_sigstop_server_for_10_s(self):
        self.sigstop("server")

    def sigstop(self, who):
        port = tb.free_port()
        hb = ["--heartbeat", "1"]  # dead after 3 s: the other side gives up on the paused one
        server = self.start_server(port, hb)
        client = self.start_client(port, hb)
        self.wait_agreed(server, 2)
        n = int(self.RATE * (self.BEFORE + self.PAUSE + self.AFTER))
        up = Feeder(client, UP_ID, self.RATE, n)
        down = Feeder(server, DOWN_ID, self.RATE, n)
        up.start()
        down.start()
        paused = client if who == "client" else server
        time.sleep(self.BEFORE)
        paused.p.send_signal(signal.SIGSTOP)
        try:
            time.sleep(self.PAUSE)
        finally:
            paused.p.send_signal(signal.SIGCONT)
        # The paused side's feeder was blocked on the full pipe meanwhile; it still writes all n.
        up.join(60)
        down.join(60)
        self.assertEqual((up.sent, down.sent), (n, n), "the feeders did not write everything" + self.logs())
        done = self.wait_for_lines([(server, n), (client, n)])
        s_stats, c_stats = self.stop(server, client)
        got_up = self.received(server, UP_ID)
        got_down = self.received(client, DOWN_ID)
        for what, got in (("client -> server", got_up), ("server -> client", got_down)):
            self.assertTrue(in_order_without_duplicates(got),
                            "%s: %s%s" % (what, describe_sequence(got, n), self.logs()))
        missing = (n - len(got_up)) + (n - len(got_down))
        counted = sum(s.get(k, 0) for s in (s_stats, c_stats) for k in ("dropped", "lost", "undeliverable"))
        print("\n  all received: %s; missing %d (up %d, down %d), counted %d; server: %s; client: %s" % (
            done, missing, n - len(got_up), n - len(got_down), counted,
            " ".join("%s=%s" % (k, s_stats.get(k)) for k in ("lost", "dropped", "resumed", "replayed", "undeliverable")),
            " ".join("%s=%s" % (k, c_stats.get(k)) for k in ("lost", "dropped", "resumed", "replayed", "undeliverable"))))
        self.assertLessEqual(missing, counted, "frames lost and not counted" + self.logs())
        for name, s in (("server", s_stats), ("client", c_stats)):
            self.assertIn("resumed", s, "%s: no resumed= in the final stats line%s" % (name, self.logs()))
        self.assertGreater(c_stats["resumed"], 0, "the client did not resume after the pause" + self.logs())
        self.assertGreater(s_stats["resumed"], 0, "the server did not resume after the pause" + self.logs())


# ---------------------------------------------------------------------------------------
class TestFreshSession(ResumeTest):
    """The server no longer knows the session (restarted; its resume window expired): the
    session starts fresh, what could not be delivered is counted on the side that knows and
    the logs say so, and frames flow again."""

    RATE = 1000

    def test_server_restart_mid_stream(self):
        port = tb.free_port()
        server1 = self.start_server(port, name="server1")
        client = self.start_client(port)
        self.wait_agreed(server1, 2)
        up = Feeder(client, UP_ID, self.RATE, self.RATE * 60)
        up.start()
        self.assertTrue(self.wait_for_lines([(server1, self.RATE)], stall=5, total=20), self.logs())
        server1.p.kill()  # mid-stream: whatever the client had not heard acknowledged is at stake
        server1.p.wait()
        time.sleep(0.3)
        server2 = self.start_server(port, name="server2")
        self.wait_agreed(server2, 2)
        self.assertTrue(self.wait_for_lines([(server2, self.RATE)], stall=5, total=20),
                        "frames do not flow after the restart" + self.logs())
        up.finish()
        sent = up.sent
        self.wait_for_lines([(server2, 10**9)], stall=1.0, total=15)  # until it stops growing
        _, c_stats = self.stop(server2, client)
        d1 = self.received(server1, UP_ID)
        d2 = self.received(server2, UP_ID)
        for what, got in (("server1", d1), ("server2", d2)):
            self.assertTrue(in_order_without_duplicates(got), "%s: %s%s" % (what, describe_sequence(got, sent),
                                                                           self.logs()))
        self.assertEqual(set(d1) & set(d2), set(), "frames reached the bus twice (at-most-once across a restart)"
                         + self.logs())
        self.assertEqual(d2[-1], sent - 1, "the last frames did not reach the new server" + self.logs())
        missing = sent - len(set(d1) | set(d2))
        self.assertIn("undeliverable", c_stats, "no undeliverable= in the client's final stats" + self.logs())
        counted = c_stats["undeliverable"] + c_stats["dropped"]
        print("\n  %d frames sent: %d to server1, %d to server2, %d missing; client counted undeliverable=%d "
              "dropped=%d" % (sent, len(d1), len(d2), missing, c_stats["undeliverable"], c_stats["dropped"]))
        self.assertLessEqual(missing, counted, "frames lost and not counted by the client" + self.logs())
        # The failed resume is said on both sides; the client's line names the count.
        self.assertRegex(client.err(), r"WARNING [^\n]*no longer knows[^\n]*\d+ frames[^\n]*undeliverable",
                         "the client's log does not say the resume failed, with a count" + self.logs())
        self.assertRegex(server2.err(), r"WARNING [^\n]*resume[^\n]*does not know",
                         "the new server's log does not say it did not know the session" + self.logs())
        lines, logged = undeliverable_logged(client.err())
        print("  client log: %d lines name %d undeliverable frames" % (lines, logged))
        self.assertEqual(logged, c_stats["undeliverable"], "the client's log and its statistics disagree on the "
                         "undeliverable frames" + self.logs())
        self.assertEqual(c_stats.get("resumed", 0), 0, "the client resumed with a server that never knew it"
                         + self.logs())

    def test_expired_resume_window(self):
        port = tb.free_port()
        server = self.start_server(port, ["--resume-window", "1"])
        relay = Relay(port, "rst")
        self.addCleanup(relay.close)
        client = self.start_client(relay.port)
        self.wait_agreed(server, 2)
        n = self.RATE * 8
        up = Feeder(client, UP_ID, self.RATE, n)
        down = Feeder(server, DOWN_ID, self.RATE, n)
        up.start()
        down.start()
        time.sleep(2.0)
        relay.refuse(True)
        relay.cut_all()
        time.sleep(3.0)  # longer than the window: the server forgets the session
        relay.refuse(False)
        self.wait_agreed(client, 2, count=2, timeout=20)
        up.join(30)
        down.join(30)
        self.assertEqual((up.sent, down.sent), (n, n), self.logs())
        self.wait_for_lines([(server, n), (client, n)], stall=3.0, total=30)
        # Frames flow again in the fresh session.
        tail_from = n
        client.send([frame_line(UP_ID, tail_from + i) for i in range(100)])
        server.send([frame_line(DOWN_ID, tail_from + i) for i in range(100)])
        time.sleep(1.0)
        s_stats, c_stats = self.stop(server, client)
        up_got = self.received(server, UP_ID)
        down_got = self.received(client, DOWN_ID)
        total = n + 100
        for what, got in (("client -> server", up_got), ("server -> client", down_got)):
            self.assertTrue(in_order_without_duplicates(got), "%s: %s%s" % (what, describe_sequence(got, total),
                                                                           self.logs()))
            self.assertEqual(got[-100:], list(range(tail_from, total)), "%s: frames do not flow in the fresh session%s"
                             % (what, self.logs()))
        for name, s in (("server", s_stats), ("client", c_stats)):
            self.assertIn("undeliverable", s, "%s: no undeliverable= in the final stats%s" % (name, self.logs()))
        up_missing = total - len(up_got)
        down_missing = total - len(down_got)
        print("\n  missing up %d, down %d; server: undeliverable=%d unforwarded=%d dropped=%d; client: "
              "undeliverable=%d dropped=%d resumed=%s" % (
                  up_missing, down_missing, s_stats["undeliverable"], s_stats.get("unforwarded", 0),
                  s_stats["dropped"], c_stats["undeliverable"], c_stats["dropped"], c_stats.get("resumed")))
        # Client -> server: the client knows what it sent that was never acknowledged.
        self.assertLessEqual(up_missing, c_stats["undeliverable"] + c_stats["dropped"],
                             "client -> server frames lost and not counted" + self.logs())
        # Server -> client: the server knows what it held for the forgotten session, and what
        # it read while no session was there (unforwarded: a server without clients).
        self.assertLessEqual(down_missing, s_stats["undeliverable"] + s_stats["dropped"] + s_stats.get("unforwarded", 0),
                             "server -> client frames lost and not counted" + self.logs())
        self.assertGreater(s_stats["undeliverable"], 0, "the server held frames for the session and counted none"
                           + self.logs())
        self.assertRegex(server.err(), r"WARNING [^\n]*resume-window[^\n]*\d+ frames[^\n]*undeliverable",
                         "the server's log does not say the window ended, with a count" + self.logs())
        self.assertRegex(server.err(), r"WARNING [^\n]*resume[^\n]*does not know",
                         "the server's log does not say it no longer knew the session" + self.logs())
        self.assertRegex(client.err(), r"WARNING [^\n]*no longer knows[^\n]*\d+ frames[^\n]*undeliverable",
                         "the client's log does not say the resume failed, with a count" + self.logs())
        for name, proc, st in (("server", server, s_stats), ("client", client, c_stats)):
            lines, logged = undeliverable_logged(proc.err())
            print("  %s log: %d lines name %d undeliverable frames" % (name, lines, logged))
            self.assertEqual(logged, st["undeliverable"], "%s: the log and the statistics disagree on the "
                             "undeliverable frames%s" % (name, self.logs()))


def main(argv):
    return tb.run_tests(__name__, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
