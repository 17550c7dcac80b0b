// Large-body load for bench/large-bodies.sh: CLIENTS concurrent clients each send chat requests whose one user message
// is BODY_MB megabytes, one after another, for SECONDS; the gateway's resident memory (VmRSS of PID) is sampled every
// second. Every body differs in its first bytes, so no request is an exact-cache hit and each one goes upstream.
// Usage: node bench/large-bodies.mjs URL PID CLIENTS BODY_MB SECONDS OUT.csv
// Only 127.0.0.1 is accepted as the target. Prints one JSON summary line on stdout.
import http from 'node:http';
import fs from 'node:fs';

const [url, pidText, clientsText, megabytesText, secondsText, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node bench/large-bodies.mjs URL PID CLIENTS BODY_MB SECONDS OUT.csv');
  process.exit(2);
}
const target = new URL(url);
if (target.hostname !== '127.0.0.1') {
  console.error('large-bodies.mjs: the target must be 127.0.0.1');
  process.exit(2);
}
const pid = Number(pidText);
const clients = Number(clientsText);
const seconds = Number(secondsText);
const contentBytes = Math.round(Number(megabytesText) * 1024 * 1024);

const head = Buffer.from('{"model":"bench-model","messages":[{"role":"user","content":"');
const tail = Buffer.from('"}]}');
const template = Buffer.alloc(head.length + contentBytes + tail.length, 'a');
head.copy(template, 0);
tail.copy(template, head.length + contentBytes);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });

const statuses = {};
let sent = 0;
let failed = 0;
const deadline = Date.now() + seconds * 1000;

function rssMb() {
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return Number(line.split(/\s+/)[1]) / 1024;
  } catch {
    return NaN;
  }
}

function post(body) {
  return new Promise((resolve) => {
    const request = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: 'Bearer sk-bench' } },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
      });
    request.on('error', () => resolve('error'));
    request.end(body);
  });
}

async function client(index) {
  // Each client owns its copy, so a body is never changed while it is being sent.
  const body = Buffer.from(template);
  while (Date.now() < deadline) {
    body.write(`${index}-${sent++}-`.padEnd(24, '-'), head.length);
    const status = await post(body);
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status !== 200) {
      failed++;
    }
  }
}

const started = Date.now();
const samples = [[0, rssMb()]];
const sampler = setInterval(() => samples.push([(Date.now() - started) / 1000, rssMb()]), 1000);
await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
clearInterval(sampler);
samples.push([(Date.now() - started) / 1000, rssMb()]);
agent.destroy();

fs.writeFileSync(out, 'seconds,rss_mb\n' + samples.map(([t, r]) => `${t.toFixed(1)},${r.toFixed(1)}`).join('\n') + '\n');
const rss = samples.map(([, r]) => r);
const quarter = (q) => Math.max(...rss.slice(Math.floor((rss.length * q) / 4), Math.max(Math.floor((rss.length * (q + 1)) / 4), Math.floor((rss.length * q) / 4) + 1)));
const requests = Object.values(statuses).reduce((a, b) => a + b, 0);
console.log(JSON.stringify({
  clients, body_mb: Number(megabytesText), seconds, requests, failed, statuses,
  rss_mb: { start: Math.round(rss[0]), peak: Math.round(Math.max(...rss)), end: Math.round(rss[rss.length - 1]),
    quarter_max: [0, 1, 2, 3].map((q) => Math.round(quarter(q))) },
}));
