"""A minimal i-PI server for timing a driver (bench/ipi_floor.mjs).

Serves STEPS evaluations of one structure over a unix socket (or TCP with
`tcp`): STATUS, [INIT], POSDATA (positions rattled by 0.001 Å each step),
STATUS, GETFORCE, then EXIT; reads every reply whole. Prints the median time
from POSDATA to the end of FORCEREADY over the last 80 % of the steps.
Needs numpy.

    python ipi_fake_server.py SOCKET_PATH_OR_PORT STRUCTURE.xyz STEPS [unix|tcp]
"""
import os
import re
import socket
import struct
import sys
import time

import numpy as np

BOHR_PER_ANGSTROM = 1.8897261254578281


def main():
    where, xyz, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "unix"
    lines = open(xyz).read().split("\n")
    n = int(lines[0])
    lattice = [float(x) for x in re.search(r'Lattice="([^"]+)"', lines[1]).group(1).split()]
    positions = np.array([[float(v) for v in line.split()[1:4]] for line in lines[2 : 2 + n]])
    h = np.array(lattice).reshape(3, 3).T * BOHR_PER_ANGSTROM  # columns = lattice vectors
    hinv = np.linalg.inv(h)
    if mode == "unix":
        if os.path.exists(where):
            os.unlink(where)
        server = socket.socket(socket.AF_UNIX)
        server.bind(where)
    else:
        server = socket.socket(socket.AF_INET)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(where)))
    server.listen(1)
    client, _ = server.accept()
    if mode != "unix":
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(k):
        out = bytearray()
        while len(out) < k:
            chunk = client.recv(k - len(out))
            if not chunk:
                raise SystemExit("the driver closed the connection")
            out += chunk
        return bytes(out)

    def header(name):
        return name.ljust(12).encode()

    rng = np.random.default_rng(1)
    times = []
    for _ in range(steps):
        client.sendall(header("STATUS"))
        if recv(12).startswith(b"NEEDINIT"):
            client.sendall(header("INIT") + struct.pack("<ii", 0, 1) + b" ")
            client.sendall(header("STATUS"))
            recv(12)
        p = (positions + rng.normal(scale=0.001, size=positions.shape)) * BOHR_PER_ANGSTROM
        t0 = time.perf_counter()
        client.sendall(header("POSDATA") + h.tobytes() + hinv.tobytes() + struct.pack("<i", n) + p.tobytes())
        client.sendall(header("STATUS"))
        recv(12)
        client.sendall(header("GETFORCE"))
        recv(12 + 8)
        atoms = struct.unpack("<i", recv(4))[0]
        recv(24 * atoms + 72)
        recv(struct.unpack("<i", recv(4))[0])
        times.append(time.perf_counter() - t0)
    client.sendall(header("EXIT"))
    client.close()
    kept = times[len(times) // 5 :]
    print(f'{{"steps": {steps}, "round_trip_median_s": {float(np.median(kept))}}}')


if __name__ == "__main__":
    main()
