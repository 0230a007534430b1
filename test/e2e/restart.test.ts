// Issue 13 §3–4: registrations that outlive the P-CSCF. The P-CSCF runs as `imsec pcscf --state …`
// in a child process (userspace backend, mod=UDP-enc-tun on loopback); the S-CSCF/HSS and a few
// hundred UEs (one shared backend) run here. The P-CSCF is killed with SIGKILL while UEs are still
// registering, and started again on the same address from the same store (an SQLite file; or, in
// the takeover test, a second process on a shared PostgreSQL store): every UE registered before the
// kill is still served — MO MESSAGE answered, MT MESSAGE delivered — no REGISTER reaches the
// S-CSCF after the restart, and an ESP packet captured before the kill is refused when replayed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import { Hss } from '../../src/scscf/hss.ts';
import { HssStore } from '../../src/scscf/hss-store.ts';
import { Scscf } from '../../src/scscf/scscf.ts';
import { fromHex } from '../../src/util/bytes.ts';
import { systemClock } from '../../src/util/clock.ts';
import { Ue } from '../../src/ue/ue.ts';
import { startPostgres } from '../support/postgres.ts';
import { DOMAIN, K, OPC, subscriber, until } from '../support/ims-world.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const IP = '127.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'imsec-restart-'));
const pg = await startPostgres();
const children = new Set<ChildProcess>();
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  if (typeof pg !== 'string') await pg.stop();
});

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, IP, () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** `fn` over `items`, 16 at a time (a loaded two-core machine runs the P-CSCF under tsx). */
async function inBatches<T, R>(items: readonly T[], fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 16) out.push(...(await Promise.all(items.slice(i, i + 16).map(fn))));
  return out;
}

interface PcscfProc {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  exited(): Promise<void>;
}

/** `imsec pcscf` in a child; resolves once it logs "listening". */
async function startPcscf(args: string[], env: Record<string, string> = {}): Promise<PcscfProc> {
  const child = spawn(process.execPath, ['bin/imsec.mjs', 'pcscf', '--json', ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.add(child);
  const lines: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not JSON: ignored
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const gone = new Promise<void>((r) => child.once('close', () => r()));
  const end = Date.now() + 60_000;
  while (!lines.some((l) => l.event === 'listening')) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the P-CSCF did not start (exit ${child.exitCode}): ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, lines, exited: () => gone };
}

async function scenario(opts: { n: number; killAfter: number; state: string; stateKeyHex?: string }): Promise<void> {
  const store = new HssStore(':memory:');
  for (let i = 1; i <= opts.n; i++) {
    const s = subscriber(i);
    store.add({ impi: s.impi, impus: [s.impu], k: fromHex(K), opc: fromHex(OPC), amf: fromHex('8000') });
  }
  const seen: { method: string; t: number }[] = [];
  const scscf = await Scscf.start({
    address: IP,
    port: 0,
    domain: DOMAIN,
    hss: new Hss(store),
    trace: (e) => {
      if (e.dir === 'recv' && !e.firstLine.startsWith('SIP/2.0')) seen.push({ method: e.firstLine.split(' ')[0]!, t: Date.now() });
    },
  });
  const [port, portC, portS, encap, metrics] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const args = [
    '--listen',
    `${IP}:${port}`,
    '--port-c',
    String(portC),
    '--port-s',
    String(portS),
    '--encap-port',
    String(encap),
    '--scscf',
    `${scscf.local.address}:${scscf.local.port}`,
    '--mode',
    'udp-enc-tun',
    '--state',
    opts.state,
    '--log-level',
    'info',
    '--metrics',
    `${IP}:${metrics}`,
  ];
  // Every ESP-in-UDP packet the UEs send, as the UDP payload (IPv4 header 20 + UDP 8).
  const sent: Uint8Array[] = [];
  const ueBackend = await UserspaceBackend.create({
    localIp: IP,
    encapPort: 0,
    clock: systemClock,
    keepaliveMs: 0,
    wireLog: (ip, dir) => {
      if (dir === 'out' && ip[9] === 17 && ip.length > 28 + 8) sent.push(ip.slice(28));
    },
  });
  const ues: Ue[] = [];
  let p1: PcscfProc | undefined;
  let p2: PcscfProc | undefined;
  try {
    const env: Record<string, string> = opts.stateKeyHex ? { IMSEC_STATE_KEY: opts.stateKeyHex } : {};
    p1 = await startPcscf(args, env);
    assert.equal(p1.lines.find((l) => l.event === 'listening')?.state_keys, opts.stateKeyHex ? 'aes-256-gcm' : 'plain (0600 file)');
    for (let i = 1; i <= opts.n; i++) {
      const s = subscriber(i);
      ues.push(
        await Ue.create({
          impi: s.impi,
          impu: s.impu,
          pcscf: { address: IP, port },
          localIp: IP,
          k: fromHex(K),
          opc: fromHex(OPC),
          modes: ['UDP-enc-tun'],
          pcscfEncapPort: encap,
          reRegister: 'off',
          expires: 3600,
          backend: ueBackend,
          timers: { t1: 250 },
        }),
      );
    }
    // Mid-load: register with some concurrency and kill the P-CSCF once `killAfter` have registered.
    const registered = new Set<Ue>();
    let next = 0;
    let killed = false;
    const worker = async () => {
      while (next < ues.length && !killed) {
        const ue = ues[next++]!;
        const r = await ue.register().catch(() => undefined);
        if (r?.ok && !killed) registered.add(ue);
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await until(() => registered.size >= opts.killAfter, `${opts.killAfter} UEs registered`, 120_000);
    // One MO MESSAGE before the kill: its ESP packet is the one replayed afterwards.
    const before = [...registered][0]!;
    const mark = sent.length;
    assert.equal((await before.sendMessage(`sip:echo@${DOMAIN}`, 'before the kill')).status, 200);
    const captured = sent.slice(mark);
    assert.ok(captured.length > 0, 'captured the MESSAGE as ESP');
    // Under load the UE may have retransmitted the MESSAGE (T1 250 ms) in a packet the P-CSCF had not
    // read yet: one it never accepted, which the restarted P-CSCF rightly accepts once. Let the first
    // process read everything captured before it dies, so that every replayed packet is one it took.
    await new Promise((r) => setTimeout(r, 1_500));
    killed = true;
    const atKill = new Set(registered);
    p1.child.kill('SIGKILL');
    await p1.exited();
    await Promise.all(workers);
    // Those still registering when the P-CSCF died are left out (their registration never completed).
    const registersBefore = seen.filter((e) => e.method === 'REGISTER').length;
    const messagesBefore = seen.filter((e) => e.method === 'MESSAGE').length;

    p2 = await startPcscf(args, env);
    // The replayed packet: refused (counted as a replay drop), and no MESSAGE reaches the S-CSCF.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, IP, () => r()));
    for (const esp of captured) await new Promise<void>((r) => sock.send(esp, encap, IP, () => r()));
    sock.close();
    await until(() => p2!.lines.some((l) => l.event === 'esp-dropped'), 'the replayed packet is reported as dropped', 10_000);
    const drop = p2.lines.find((l) => l.event === 'esp-dropped')!;
    assert.ok(drop.reason === 'replay' || drop.reason === 'outside-window', `dropped as ${String(drop.reason)}`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.filter((e) => e.method === 'MESSAGE').length, messagesBefore, 'the replayed MESSAGE never reached the S-CSCF');

    // Every UE registered before the kill: MO answered, MT delivered, no REGISTER anywhere.
    const list = [...atKill];
    const mo = await inBatches(list, (ue) =>
      ue.sendMessage(`sip:echo@${DOMAIN}`, 'after the restart').then(
        (r) => r.status,
        (e: Error) => e.message,
      ),
    );
    const events = new Map<string, number>();
    for (const l of p2.lines) events.set(String(l.event), (events.get(String(l.event)) ?? 0) + 1);
    assert.deepEqual(
      mo.filter((s) => s !== 200),
      [],
      `every MO MESSAGE answered 200 (${mo.filter((x) => x === 200).length} of ${list.length}; restored ${String(p2.lines.find((l) => l.event === 'listening')?.restored_registrations)}; P-CSCF events ${JSON.stringify([...events])}; drops ${JSON.stringify(p2.lines.filter((l) => l.event === 'esp-dropped').slice(0, 5))})`,
    );
    const impuOf = new Map(ues.map((ue, i) => [ue, subscriber(i + 1).impu]));
    const mt = await inBatches(list, (ue) =>
      scscf.sendMessage(impuOf.get(ue)!, 'to you after the restart').then(
        (r) => r.status,
        (e: Error) => e.message,
      ),
    );
    assert.deepEqual(
      mt.filter((s) => s !== 200),
      [],
      'every MT MESSAGE delivered',
    );
    assert.equal(seen.filter((e) => e.method === 'REGISTER').length, registersBefore, 'nobody re-registered');
    assert.ok(
      list.every((ue) => ue.state === 'registered'),
      'every UE still registered',
    );
    // The restored registrations count as registered in the metrics of the new process.
    const body = await (await fetch(`http://${IP}:${metrics}/metrics`)).text();
    const m = /^imsec_pcscf_registrations\{[^}]*state="registered"[^}]*\} (\d+)$/m.exec(body);
    assert.ok(m && Number(m[1]) >= list.length, `registered gauge ${m?.[1]} after restoring ${list.length}`);
  } finally {
    for (const ue of ues) await ue.close().catch(() => {});
    await ueBackend.close();
    for (const p of [p1, p2]) {
      if (p && p.child.exitCode === null) {
        p.child.kill('SIGTERM');
        await p.exited();
      }
    }
    await scscf.stop();
    store.close();
  }
}

test('SIGKILL mid-load and restart on the SQLite store: every registered UE served (MO and MT), none re-registers, a replayed packet refused', async () => {
  const file = join(dir, 'pcscf-state.db');
  await scenario({ n: 240, killAfter: 160, state: file });
  assert.equal(statSync(file).mode & 0o777, 0o600, 'the state file is owner-only');
});

test(
  "takeover on PostgreSQL (keys sealed): a second P-CSCF process on the dead one's address serves its registrations",
  { skip: typeof pg === 'string' ? pg : false },
  async () => {
    const url = (pg as Exclude<typeof pg, string>).database('pcscf_takeover');
    // With the key column sealed (IMSEC_STATE_KEY): the second process opens what the first one sealed.
    await scenario({ n: 40, killAfter: 30, state: url, stateKeyHex: '5a'.repeat(32) });
  },
);
