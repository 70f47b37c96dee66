"""The load generator of bench/serve.mjs with zero-copy reads (not a test).

Same arguments and JSON line as bench/serve_client.mjs, but each answer's
body is moved from the socket into a pipe and from the pipe to /dev/null
with splice(2): the kernel hands over its pages instead of copying 9 MB into
the client per answer, so the client takes less of the CPU it shares with
the server (the server's side is unchanged). Linux and Python >= 3.10
(os.splice); standard library only.

    python3 bench/serve_client_splice.py PORT|unix:PATH PATH BODY_FILE CONNECTIONS SECONDS [CONTENT_TYPE] [ACCEPT]
"""
import fcntl
import json
import os
import re
import resource
import selectors
import socket
import sys
import time

HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)


def main():
    where, target, body_file, connections, seconds = sys.argv[1:6]
    content_type = sys.argv[6] if len(sys.argv) > 6 else "text/plain"
    accept = sys.argv[7] if len(sys.argv) > 7 else "application/octet-stream"
    body = open(body_file, "rb").read()
    unix = where.startswith("unix:")
    host = "localhost" if unix else f"127.0.0.1:{where}"
    request = f"POST {target} HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\naccept: {accept}\r\ncontent-length: {len(body)}\r\n\r\n".encode("latin1") + body
    devnull = os.open(os.devnull, os.O_WRONLY)
    selector = selectors.DefaultSelector()
    stats = {"requests": 0, "failures": 0, "lastError": "", "bytes": 0}
    latencies = []

    class Connection:
        def __init__(self):
            if unix:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(where[5:])
            else:
                self.sock = socket.create_connection(("127.0.0.1", int(where)))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pipe_r, self.pipe_w = os.pipe()
            # a pipe of 1 MiB (the default maximum): fewer splice calls per answer
            try:
                fcntl.fcntl(self.pipe_w, fcntl.F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
            self.remaining = -1
            self.status = 0
            self.sent = 0.0

        def send(self):
            self.remaining = -1
            self.sent = time.perf_counter()
            self.sock.setblocking(True)
            self.sock.sendall(request)
            self.sock.setblocking(False)

        def readable(self):
            """Consumes what arrived; True once the whole answer is in."""
            if self.remaining < 0:
                try:
                    head = self.sock.recv(8192, socket.MSG_PEEK)
                except BlockingIOError:
                    return False
                if not head:
                    raise ConnectionError("the server closed the connection")
                end = head.find(HEAD_END)
                if end < 0:
                    return False
                self.sock.recv(end + 4)
                self.status = int(head[9:12])
                m = CONTENT_LENGTH.search(head[:end])
                if m is None:
                    raise ConnectionError(f"an answer without content-length: {head[:200]!r}")
                self.remaining = int(m.group(1))
                stats["bytes"] += end + 4
            while self.remaining > 0:
                try:
                    k = os.splice(self.sock.fileno(), self.pipe_w, min(self.remaining, 1 << 20), flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
                except BlockingIOError:
                    return False
                if k == 0:
                    raise ConnectionError("the server closed the connection mid-answer")
                self.remaining -= k
                stats["bytes"] += k
                while k > 0:
                    k -= os.splice(self.pipe_r, devnull, k, flags=os.SPLICE_F_MOVE)
            return True

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    deadline = time.monotonic() + float(seconds)
    active = 0
    for _ in range(int(connections)):
        c = Connection()
        c.send()
        selector.register(c.sock, selectors.EVENT_READ, c)
        active += 1
    while active > 0:
        for key, _ in selector.select():
            c = key.data
            if not c.readable():
                continue
            latencies.append((time.perf_counter() - c.sent) * 1e3)
            if c.status == 200:
                stats["requests"] += 1
            else:
                stats["failures"] += 1
                stats["lastError"] = f"status {c.status}"
            if time.monotonic() < deadline:
                c.send()
            else:
                selector.unregister(c.sock)
                c.sock.close()
                active -= 1
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()

    def q(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(json.dumps({**stats, "seconds": elapsed, "cpuSeconds": cpu, "p50": q(0.5), "p99": q(0.99)}))


if __name__ == "__main__":
    main()
