#!/usr/bin/env node
// The transport floor of bench/serve.mjs (not a test): a bare node:http
// server that reads each request's body and answers the same bytes every
// time (ANSWER_FILE, the .npy answer acdc serve gave), on a TCP port of
// loopback or a unix domain socket. What a server costs to move that answer
// to this client with Node's HTTP and the kernel's socket, with no work
// behind it: acdc serve's CPU per request minus this, minus the library's,
// is what Fastify, the service's checks and the event loop add.
//
//   node bench/serve_floor.mjs ANSWER_FILE [SOCKET_PATH]
// prints "listening on http://127.0.0.1:PORT" or "listening on unix:PATH".
import * as fs from 'node:fs';
import * as http from 'node:http';

const [answerFile, socketPath] = process.argv.slice(2);
const answer = fs.readFileSync(answerFile);
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': answer.length });
    res.end(answer);
  });
});
const done = () => server.listen(...(socketPath ? [socketPath] : [0, '127.0.0.1']), () => {
  const a = server.address();
  console.log(socketPath ? `listening on unix:${socketPath}` : `listening on http://127.0.0.1:${a.port}`);
});
done();
process.on('SIGTERM', () => server.close(() => process.exit(0)) && server.closeAllConnections());
