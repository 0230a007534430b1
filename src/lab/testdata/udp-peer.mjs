// A scriptable UDP peer for the lab tests (run inside a namespace with lab.spawnNode): binds one
// socket, prints `ready PORT`, prints `recv IP PORT PAYLOAD` per datagram, and obeys stdin lines:
//   send HOST PORT PAYLOAD | keepalive HOST PORT MS PAYLOAD | stop-keepalive
// Options: --port N (default 0), --family 4|6 (default 4), --echo (answer every datagram with echo:PAYLOAD).
// Plain JS, not TypeScript: spawned many times per test, and node alone starts in a fraction of the
// time (and a fifth of the CPU) that node + tsx takes.
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const echo = process.argv.includes('--echo');
const sock = createSocket(arg('--family') === '6' ? 'udp6' : 'udp4');
let keepalive;

sock.on('message', (msg, rinfo) => {
  const text = msg.toString('utf8');
  process.stdout.write(`recv ${rinfo.address} ${rinfo.port} ${text}\n`);
  if (echo && !text.startsWith('echo:')) sock.send(`echo:${text}`, rinfo.port, rinfo.address);
});
// An ICMP port unreachable surfaces as ECONNREFUSED on some paths; report it, do not crash.
sock.on('error', (e) => process.stdout.write(`error ${e.message}\n`));

sock.bind(Number(arg('--port') ?? 0), () => {
  process.stdout.write(`ready ${sock.address().port}\n`);
});

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, host, port, a, b] = line.trim().split(/\s+/);
  if (cmd === 'send' && host && port) sock.send(a ?? '', Number(port), host);
  else if (cmd === 'keepalive' && host && port && a) {
    clearInterval(keepalive);
    keepalive = setInterval(() => sock.send(b ?? 'ka', Number(port), host), Number(a));
  } else if (cmd === 'stop-keepalive') clearInterval(keepalive);
  else process.stdout.write(`error bad command: ${line}\n`);
});
// stdin closing (the test ended) must not end the peer: the lab decides when it dies.
