#!/usr/bin/env node
// The load generator of bench/serve.mjs (not a test): `connections`
// keep-alive HTTP/1.1 connections, each sending the same POST again as soon
// as the whole previous answer has arrived, for `seconds`. The answer's
// bytes are read into one reused buffer and discarded (no per-read
// allocation, no body parsing), so that the client takes as little of the
// CPU it shares with the server as it can. Prints one JSON line: requests,
// bytes, seconds, its own CPU seconds, latency quantiles.
//
//   node bench/serve_client.mjs PORT PATH BODY_FILE CONNECTIONS SECONDS [CONTENT_TYPE] [ACCEPT]
//
// PORT: a TCP port on 127.0.0.1, or unix:PATH for a unix domain socket.
import * as fs from 'node:fs';
import * as net from 'node:net';

const [port, target, bodyFile, connectionsText, secondsText, contentType = 'text/plain', accept = 'application/octet-stream'] = process.argv.slice(2);
const body = fs.readFileSync(bodyFile);
const socketPath = port.startsWith('unix:') ? port.slice(5) : null;
const request = Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nhost: ${socketPath === null ? `127.0.0.1:${port}` : 'localhost'}\r\ncontent-type: ${contentType}\r\naccept: ${accept}\r\ncontent-length: ${body.length}\r\n\r\n`, 'latin1'), body]);
const connections = Number(connectionsText);
const seconds = Number(secondsText);
const latencies = [];
let requests = 0;
let bytes = 0;
let failures = 0;
let lastError = '';
const HEAD_END = Buffer.from('\r\n\r\n');

function connection(deadline) {
  return new Promise((resolve, reject) => {
    // one buffer per connection, reused for every read
    const scratch = Buffer.allocUnsafe(1 << 20);
    let head = Buffer.alloc(0);
    let remaining = -1;
    let status = 0;
    let sent = 0n;
    let socket;
    const send = () => {
      if (Date.now() >= deadline) {
        socket.end();
        return;
      }
      head = Buffer.alloc(0);
      remaining = -1;
      sent = process.hrtime.bigint();
      socket.write(request);
    };
    const received = (data) => {
      let at = 0;
      if (remaining < 0) {
        head = head.length === 0 ? Buffer.from(data) : Buffer.concat([head, data]);
        const end = head.indexOf(HEAD_END);
        if (end < 0) return;
        const text = head.toString('latin1', 0, end);
        status = Number(text.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        if (!m) {
          reject(new Error(`an answer without content-length: ${text.slice(0, 200)}`));
          socket.destroy();
          return;
        }
        remaining = Number(m[1]);
        at = end + 4 - (head.length - data.length);
        bytes += end + 4;
      }
      const n = Math.min(remaining, data.length - at);
      remaining -= n;
      bytes += n;
      if (remaining === 0) {
        latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
        if (status === 200) requests += 1;
        else {
          failures += 1;
          lastError = `status ${status}`;
        }
        send();
      }
    };
    socket = net.connect({
      ...(socketPath === null ? { port: Number(port), host: '127.0.0.1' } : { path: socketPath }),
      onread: { buffer: scratch, callback: (n, buf) => received(buf.subarray(0, n)) },
    });
    if (socketPath === null) socket.setNoDelay(true);
    socket.on('connect', send);
    socket.on('error', reject);
    socket.on('close', resolve);
  });
}

const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const deadline = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: connections }, () => connection(deadline)));
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(c0);
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
console.log(JSON.stringify({ requests, failures, lastError, bytes, seconds: elapsed, cpuSeconds: (cpu.user + cpu.system) / 1e6, p50: q(0.5), p99: q(0.99) }));
