// The NAT lab's promises about what it leaves behind: destroy() removes every namespace and
// process, a build that fails halfway rolls back (and spares what it did not create), a process
// that dies by signal or exception cleans up, a SIGKILLed one is swept later; plus captures (g)
// and the polite refusal without root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCaptureOrThrow } from '../ipsec/pcap.ts';
import { buildNatLab, captureMissing, labAvailability, sweepStaleLabs, type BuildStep } from './index.ts';
import { run } from './netns.ts';

const PEER = fileURLToPath(new URL('./testdata/udp-peer.mjs', import.meta.url));
const HOLDER = fileURLToPath(new URL('./testdata/lab-holder.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const avail = labAvailability();
const skip = avail.ok ? false : avail.reason;

const netnsList = async () =>
  (await run(['ip', 'netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
const ours = async (prefix: string) => (await netnsList()).filter((n) => n.startsWith(`${prefix}-`));
const rootLinks = async () => (await run(['ip', '-o', 'link'])).stdout;
// A killed process may linger as a zombie until its (new) parent reaps it: that counts as dead.
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};
const gone = async (pid: number) => {
  for (let i = 0; i < 40 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
  return !alive(pid);
};
const freshPrefix = () => `imsect${Math.floor(Math.random() * 0xfff).toString(16)}`;

test('(f) destroy() removes namespaces, veths, nft tables and processes; idempotent', { skip, timeout: 60_000 }, async () => {
  const lab = await buildNatLab({ ues: 2, family: 'dual' });
  const sleeper = lab.spawn(lab.ue[1]!.ns, ['sleep', '600']);
  const node = lab.spawnNode(lab.net.ns, PEER, ['--port', '7000']);
  await node.waitForLine(/^ready/, 30_000);
  assert.deepEqual((await ours(lab.prefix)).sort(), [...lab.namespaces].sort());
  assert.match((await lab.exec(lab.nat.ns, ['nft', 'list', 'tables'])).stdout, /table ip imsec\n.*table ip6 imsec/s);
  assert.match((await lab.exec(lab.nat.ns, ['ip', '-o', 'link'])).stdout, new RegExp(`${lab.prefix}-pub@`));
  await Promise.all([lab.destroy(), lab.destroy()]);
  await lab.destroy();
  assert.equal(lab.destroyed, true);
  assert.deepEqual(await ours(lab.prefix), []);
  assert.ok(!alive(sleeper.pid!) && !alive(node.pid!), 'spawned processes are killed');
  assert.equal(sleeper.exit?.signal, 'SIGTERM');
  // Other suites may add root links or tables meanwhile: look only for ours.
  assert.ok(!(await rootLinks()).includes(lab.prefix), 'no interface of ours in the root namespace');
  assert.doesNotMatch((await run(['nft', 'list', 'tables'])).stdout, /^table ip6? imsec$/m);
  await assert.rejects(lab.exec(lab.nat.ns, ['true']), { code: 'LAB_DESTROYED' });
  assert.throws(() => lab.spawn(lab.nat.ns, ['true']), { code: 'LAB_DESTROYED' });
});

test('(f) a build that fails at any step removes what it created', { skip, timeout: 60_000 }, async () => {
  const steps: BuildStep[] = ['namespaces', 'links', 'addresses', 'forwarding', 'nat', 'conntrack-timeouts'];
  for (const failAt of steps) {
    const prefix = freshPrefix();
    const injected = new Error(`injected at ${failAt}`);
    await assert.rejects(
      buildNatLab({
        prefix,
        ues: 2,
        family: 'dual',
        onStep: (s) => {
          if (s === failAt) throw injected;
        },
      }),
      (e) => e === injected,
    );
    assert.deepEqual(await ours(prefix), [], `after a failure at ${failAt}`);
  }
});

test(
  '(f) a failing command rolls back, names the command, and spares a namespace it did not create',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = freshPrefix();
    await run(['ip', 'netns', 'add', `${prefix}-net`]); // someone else's namespace with our name
    try {
      await assert.rejects(buildNatLab({ prefix, ues: 3 }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'LAB_COMMAND_FAILED');
        assert.match(e.message, new RegExp(`ip netns add ${prefix}-net\` exited 1: .*File exists`));
        return true;
      });
      assert.deepEqual(await ours(prefix), [`${prefix}-net`]);
    } finally {
      await run(['ip', 'netns', 'del', `${prefix}-net`]);
    }
  },
);

function holder(prefix: string, mode: string) {
  const child = spawn(process.execPath, ['--import', TSX, HOLDER, prefix, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  const built = new Promise<{ namespaces: string[]; sleeper: number }>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /^built (\S+) (\d+)$/m.exec(out);
      if (m) resolve({ namespaces: m[1]!.split(','), sleeper: Number(m[2]) });
    });
    void exited.then(() => reject(new Error(`holder exited before building: ${out} ${err}`)));
  });
  return { child, built, exited, stderr: () => err };
}

test(
  '(f) a process that dies by SIGTERM, SIGINT, an uncaught exception, a rejection or exit() cleans up',
  { skip, timeout: 60_000 },
  async () => {
    const cases = [
      { mode: 'wait', signal: 'SIGTERM' as const, expect: { code: null, signal: 'SIGTERM' } },
      { mode: 'wait', signal: 'SIGINT' as const, expect: { code: null, signal: 'SIGINT' } },
      { mode: 'throw', expect: { code: 1, signal: null } },
      { mode: 'reject', expect: { code: 1, signal: null } },
      { mode: 'exit', expect: { code: 3, signal: null } },
    ];
    await Promise.all(
      cases.map(async (c) => {
        const prefix = freshPrefix();
        const h = holder(prefix, c.mode);
        try {
          const { namespaces, sleeper } = await h.built;
          assert.equal(namespaces.length, 3);
          if (c.signal) h.child.kill(c.signal);
          assert.deepEqual(await h.exited, c.expect, `${c.mode} ${c.signal ?? ''}: ${h.stderr()}`);
          assert.deepEqual(await ours(prefix), [], `${c.mode} ${c.signal ?? ''} left namespaces`);
          assert.ok(await gone(sleeper), `${c.mode}: the lab's child survived`);
        } finally {
          h.child.kill('SIGKILL');
          for (const ns of await ours(prefix)) await run(['ip', 'netns', 'del', ns], { check: false });
        }
      }),
    );
  },
);

test('(f) sweepStaleLabs() removes the lab of a SIGKILLed process, and only that', { skip, timeout: 60_000 }, async () => {
  const prefix = freshPrefix();
  const live = await buildNatLab(); // a live lab of ours must survive the sweep
  const h = holder(prefix, 'wait');
  try {
    const { namespaces, sleeper } = await h.built;
    h.child.kill('SIGKILL');
    await h.exited;
    // A buildNatLab in a concurrent test process sweeps too, so the lab may already be gone.
    const left = (await ours(prefix)).sort();
    assert.ok(
      left.every((ns) => namespaces.includes(ns)),
      'SIGKILL leaves (only) the lab behind',
    );
    const swept = sweepStaleLabs().filter((ns) => ns.startsWith(`${prefix}-`));
    assert.ok(
      swept.every((ns) => left.includes(ns)),
      `swept ${swept} of ${left}`,
    );
    assert.deepEqual(await ours(prefix), []);
    // The orphaned child is killed with its namespace.
    assert.ok(await gone(sleeper));
    assert.deepEqual((await ours(live.prefix)).sort(), [...live.namespaces].sort());
  } finally {
    await live.destroy();
    for (const ns of await ours(prefix)) await run(['ip', 'netns', 'del', ns], { check: false });
  }
});

function ipv4Udp(ip: Uint8Array) {
  const ihl = (ip[0]! & 0x0f) * 4;
  const dv = new DataView(ip.buffer, ip.byteOffset, ip.byteLength);
  return { src: ip.subarray(12, 16).join('.'), dst: ip.subarray(16, 20).join('.'), sport: dv.getUint16(ihl), dport: dv.getUint16(ihl + 2) };
}

test(
  '(g) a capture on the NAT public side shows the translated packets, on the LAN side the private ones',
  { skip: skip || captureMissing() || false, timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imsec-lab-'));
    const lab = await buildNatLab();
    try {
      const pub = join(dir, 'public.pcap');
      const lan = join(dir, 'lan.pcap');
      const stopPub = await lab.capture(lab.nat.ns, lab.nat.publicIface, 'udp port 7000', pub);
      const stopLan = await lab.capture(lab.nat.ns, lab.nat.lanIface, 'udp port 7000', lan);
      const server = lab.spawnNode(lab.net.ns, PEER, ['--port', '7000', '--echo']);
      const client = lab.spawnNode(lab.ue[0]!.ns, PEER, ['--port', '40000'], {}, { stdin: 'pipe' });
      await Promise.all([server.waitForLine(/^ready/, 30_000), client.waitForLine(/^ready/, 30_000)]);
      for (const n of [1, 2, 3]) client.write(`send ${lab.net.ip} 7000 p${n}`);
      for (const n of [1, 2, 3]) await client.waitForLine(`echo:p${n}`, 10_000);
      await Promise.all([stopPub(), stopLan(), stopPub()]);
      const onPub = readCaptureOrThrow(readFileSync(pub)).packets.map((p) => ipv4Udp(p.ip));
      const onLan = readCaptureOrThrow(readFileSync(lan)).packets.map((p) => ipv4Udp(p.ip));
      assert.equal(onPub.length, 6, JSON.stringify(onPub));
      assert.equal(onLan.length, 6, JSON.stringify(onLan));
      for (const p of onPub) assert.ok(p.src === '203.0.113.1' || p.dst === '203.0.113.1', JSON.stringify(p));
      assert.ok(!onPub.some((p) => p.src.startsWith('198.51.100.') || p.dst.startsWith('198.51.100.')));
      assert.equal(onPub.filter((p) => p.src === lab.nat.publicIp && p.dst === lab.net.ip && p.dport === 7000).length, 3);
      assert.equal(onLan.filter((p) => p.src === lab.ue[0]!.ip && p.sport === 40000 && p.dst === lab.net.ip).length, 3);
    } finally {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('without root, buildNatLab refuses with LabUnavailableError saying so', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    const a = labAvailability();
    assert.equal(a.ok, false);
    return;
  }
  // Run the check as nobody (uid 65534): the reason must name root, and building must refuse.
  const r = spawnSync(process.execPath, ['--import', TSX, HOLDER, 'availability'], {
    uid: 65534,
    gid: 65534,
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (r.status !== 0 || !r.stdout.trim()) return t.skip(`cannot run node as uid 65534 here: ${r.stderr.trim().slice(0, 200)}`);
  const got = JSON.parse(r.stdout) as { ok: boolean; reason: string; error: string };
  assert.equal(got.ok, false);
  assert.match(got.reason, /needs root .*uid 65534/);
  assert.match(got.error, /^LabUnavailableError: NAT lab unavailable: needs root/);
});
