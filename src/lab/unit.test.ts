// The NAT lab's parts that need no root: option checks and the naming plan, the nft ruleset,
// the conntrack parser, and LabProcess's line handling and kill (on plain local processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LabProcess, natRuleset, parseConntrack, planNatLab } from './index.ts';

test('planNatLab: names fit 15-character interfaces, documentation addresses, options checked', () => {
  const p = planNatLab({ prefix: 'abcdefghi', ues: 250, family: 'dual' });
  assert.deepEqual(p.namespaces.slice(0, 3), ['abcdefghi-nat', 'abcdefghi-net', 'abcdefghi-ue0']);
  for (const name of [p.nat.lanIface, p.nat.publicIface, p.net.iface, ...p.ue.map((u) => u.iface), 'abcdefghi-b249'])
    assert.ok(name.length <= 15, name);
  assert.deepEqual(p.ue[249], {
    ns: 'abcdefghi-ue249',
    iface: 'abcdefghi-u249',
    ip: '198.51.100.251',
    ip4: '198.51.100.251',
    ip6: '2001:db8:100::fb',
  });
  assert.equal(p.nat.publicIp, '203.0.113.1');
  assert.equal(p.net.ip6, '2001:db8:203::10');
  const v6 = planNatLab({ family: 'ipv6' });
  assert.equal(v6.ue[0]!.ip, '2001:db8:100::2');
  assert.equal(v6.ue[0]!.ip4, undefined);
  assert.equal(v6.nat.publicIp, '2001:db8:203::1');
  assert.match(planNatLab().prefix, /^imsec[0-9a-f]{4}$/);
  assert.notEqual(planNatLab().prefix, planNatLab().prefix + 'x');
  for (const bad of [
    { prefix: 'Imsec' },
    { prefix: 'imsec12345' },
    { ues: 0 },
    { ues: 251 },
    { ues: 1.5 },
    { udpTimeoutS: 0 },
    { family: 'ipx' as 'ipv4' },
    { natType: 'full' as 'random' },
  ]) {
    assert.throws(() => planNatLab(bad), { code: 'LAB_BAD_OPTIONS' }, JSON.stringify(bad));
  }
});

test('natRuleset: masquerade (random) on the public side, only replies forwarded inwards', () => {
  const r = natRuleset('ip6', 'x-pub', 'random');
  assert.match(r, /^table ip6 imsec \{/);
  assert.match(r, /oifname "x-pub" masquerade random\n/);
  assert.match(r, /iifname "x-pub" ct state established,related accept\n\s+iifname "x-pub" drop/);
  assert.match(natRuleset('ip', 'x-pub', 'masquerade'), /masquerade\n/);
});

test('parseConntrack: original and reply tuples, flags, both families', () => {
  const text = [
    'ipv4     2 udp      17 29 src=198.51.100.2 dst=203.0.113.10 sport=40000 dport=7000 [UNREPLIED] src=203.0.113.10 dst=203.0.113.1 sport=7000 dport=37536 mark=0 use=1',
    'ipv6     10 udp      17 3 src=2001:db8:100::2 dst=2001:db8:203::10 sport=40000 dport=7000 src=2001:db8:203::10 dst=2001:db8:203::1 sport=7000 dport=40000 [ASSURED] mark=0 use=1',
    'ipv4     2 tcp      6 431999 ESTABLISHED src=198.51.100.2 dst=203.0.113.10 sport=5 dport=6 src=203.0.113.10 dst=203.0.113.1 sport=6 dport=5 [ASSURED] mark=0 use=1',
    'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
    '',
  ].join('\n');
  const e = parseConntrack(text);
  assert.equal(e.length, 3);
  assert.deepEqual(e[0]!.orig, { src: '198.51.100.2', dst: '203.0.113.10', sport: 40000, dport: 7000 });
  assert.deepEqual(e[0]!.reply, { src: '203.0.113.10', dst: '203.0.113.1', sport: 7000, dport: 37536 });
  assert.deepEqual([e[0]!.flags, e[0]!.timeoutS, e[0]!.proto], [['UNREPLIED'], 29, 'udp']);
  assert.deepEqual([e[1]!.family, e[1]!.reply.dst, e[1]!.flags], ['ipv6', '2001:db8:203::1', ['ASSURED']]);
  assert.equal(e[2]!.state, 'ESTABLISHED');
});

const script = (js: string) => new LabProcess('local', [process.execPath, '-e', js]);

test('LabProcess: waits take the oldest unclaimed match, out of order, never twice; iterator sees all', async () => {
  const p = script("console.log('ready 1'); console.log('b'); setTimeout(() => { console.log('a'); console.log('b'); }, 100)");
  assert.equal(await p.waitForLine(/^a$/), 'a'); // arrives after the first b
  assert.equal(await p.waitForLine(/^b$/), 'b'); // the early b was not skipped…
  assert.equal(await p.waitForLine((l) => l === 'b'), 'b'); // …and the late one is a different line
  assert.equal(await p.waitForLine(/^ready/), 'ready 1');
  const all: string[] = [];
  for await (const l of p) all.push(l);
  assert.deepEqual(all, ['ready 1', 'b', 'a', 'b']);
  assert.deepEqual(await p.exited, { code: 0, signal: null });
  await assert.rejects(
    p.waitForLine('never', 100),
    (e: Error & { code?: string }) => e.code === 'LAB_PROCESS_EXITED' && /last stdout: .*a \| b/.test(e.message),
  );
});

test('LabProcess: timeout names the command and its output; kill escalates to SIGKILL', async () => {
  const p = script("process.on('SIGTERM', () => console.error('ignoring SIGTERM')); console.log('up'); setInterval(() => {}, 1000)");
  await p.waitForLine('up');
  await assert.rejects(
    p.waitForLine('down', 50),
    (e: Error & { code?: string }) => e.code === 'LAB_TIMEOUT' && e.message.includes('-e') && e.message.includes('up'),
  );
  const e = await p.kill('SIGTERM', 300);
  assert.equal(e.signal, 'SIGKILL');
  assert.match(p.stderr, /ignoring SIGTERM/);
  assert.deepEqual(await p.kill(), e, 'killing a dead process is a no-op');
  const missing = new LabProcess('local', ['/nonexistent/binary']);
  assert.equal((await missing.exited).error, 'ENOENT');
});

test('LabProcess: exits promptly even when a grandchild keeps its stdout open', async () => {
  const p = new LabProcess('local', ['sh', '-c', 'sleep 5 & echo $!']);
  const grandchild = Number(await p.waitForLine(/^\d+$/));
  const t0 = Date.now();
  try {
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 2_000);
  } finally {
    process.kill(grandchild, 'SIGKILL');
  }
});
