// Memory of an installed, idle SA set (issue 9 §2): N registrations' SA sets (4 SAs each) installed
// on one userspace backend the way the P-CSCF (src/pcscf/register.ts + registrations.ts) and the UE
// (src/ue/sa-table.ts, many UEs on one backend in `imsec load`) do it — SaSlots per registration,
// createSaSet, installTemporary, one protected REGISTER in and one 200 OK out, promote — then a
// forced GC and heap / RSS / off-heap bytes per set. The same is measured for a baseline commit's
// src/ (extracted with `git archive` under .bench-base/) in the same run, each (code, role) in a
// process of its own, and printed as a ratio.
//
//   npm run bench:sa-memory [-- --n 20000] [--base <commit>] [--json] [--snapshot]
//
// --snapshot also writes a heap snapshot per process and prints the largest constructors
// (self bytes per set), to see where the bytes go.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const flag = (name: string): boolean => argv.includes(`--${name}`);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');

/** The commit before issue 9's SA-memory work (main at the start of the session). */
const DEFAULT_BASE = '184dc93';

interface Figures {
  role: 'pcscf' | 'ue';
  n: number;
  heapPerSet: number;
  rssPerSet: number;
  externalPerSet: number;
  arrayBuffersPerSet: number;
  top?: { what: string; count: number; bytesPerSet: number }[];
}

if (flag('child')) await child();
else await parent();

async function parent(): Promise<void> {
  const n = Number(arg('n', '20000'));
  const base = arg('base', DEFAULT_BASE);
  const json = flag('json');
  const sha = execFileSync('git', ['rev-parse', base], { cwd: repo, encoding: 'utf8' }).trim();
  // Under the repository (not /tmp) so the old code resolves node_modules the same way.
  const baseRoot = join(repo, '.bench-base', sha.slice(0, 12));
  if (!existsSync(join(baseRoot, 'src'))) {
    mkdirSync(baseRoot, { recursive: true });
    const tar = execFileSync('git', ['archive', sha, 'src'], { cwd: repo, maxBuffer: 1 << 28 });
    execFileSync('tar', ['-x', '-C', baseRoot], { input: tar });
  }
  const run = (root: string, role: string): Figures => {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--child',
        '--root',
        root,
        '--role',
        role,
        '--n',
        String(n),
      ].concat(flag('snapshot') ? ['--snapshot'] : []),
      { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    if (r.status !== 0) throw new Error(`child ${root} ${role} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
  };
  const out: Record<string, unknown>[] = [];
  for (const role of ['pcscf', 'ue'] as const) {
    const old = run(baseRoot, role);
    const now = run(repo, role);
    const row = {
      role,
      n,
      base: sha.slice(0, 9),
      heap_old: Math.round(old.heapPerSet),
      heap_new: Math.round(now.heapPerSet),
      heap_ratio: round2(now.heapPerSet / old.heapPerSet),
      rss_old: Math.round(old.rssPerSet),
      rss_new: Math.round(now.rssPerSet),
      rss_ratio: round2(now.rssPerSet / old.rssPerSet),
      offheap_old: Math.round(old.externalPerSet),
      offheap_new: Math.round(now.externalPerSet),
    };
    out.push(row);
    if (!json) {
      console.log(
        `${role.padEnd(5)} N=${n}  heap B/set ${row.heap_old} -> ${row.heap_new} (x${row.heap_ratio})  ` +
          `RSS B/set ${row.rss_old} -> ${row.rss_new} (x${row.rss_ratio})  off-heap B/set ${row.offheap_old} -> ${row.offheap_new}`,
      );
      for (const [label, f] of [
        ['old', old],
        ['new', now],
      ] as const) {
        if (!f.top) continue;
        console.log(`  ${label}: largest by self size (bytes per set, objects per set)`);
        for (const t of f.top)
          console.log(`    ${t.bytesPerSet.toFixed(0).padStart(6)}  ${(t.count / n).toFixed(2).padStart(6)}  ${t.what}`);
      }
    }
  }
  if (json) console.log(JSON.stringify(out));
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

async function child(): Promise<void> {
  const root = arg('root', repo);
  const role = arg('role', 'pcscf') as 'pcscf' | 'ue';
  const n = Number(arg('n', '20000'));
  const gc = (globalThis as { gc?: () => void }).gc!;
  const src = (p: string) => import(join(root, 'src', p));
  const { UserspaceBackend } = await src('ipsec/backends/userspace.ts');
  const { createSaSet } = await src('ipsec/sa-set.ts');
  const { SaSlots } = await src('ipsec/sa-slots.ts');
  const { Sad } = await src('ipsec/sad.ts');
  const { expandKeys } = await src('ipsec/keys.ts');
  const { randomBytes } = await import('node:crypto');

  // A clock whose timers cost what a real one's do per set (one object, one cancel closure), without
  // ManualClock's O(n) cancel.
  let now = 1_000_000;
  const timers = new Set<object>();
  const clock = {
    now: () => now,
    setTimer(_ms: number, _fn: () => void): () => void {
      const t = { _fn };
      timers.add(t);
      return () => void timers.delete(t);
    },
  };
  const ueIp = '127.0.0.2';
  const pcscfIp = '127.0.0.1';
  const backend = await UserspaceBackend.create({ localIp: role === 'pcscf' ? pcscfIp : ueIp, encapPort: 0, clock });
  const peer = new Sad();
  const ik = randomBytes(16);
  const ck = randomBytes(16);
  const register = new TextEncoder().encode('REGISTER sip:ims.example SIP/2.0\r\n'.padEnd(700, 'x'));
  const ok = new TextEncoder().encode('SIP/2.0 200 OK\r\n'.padEnd(500, 'x'));
  const held: unknown[] = [];
  let spiPeer = 0x10000;

  const one = async (i: number): Promise<void> => {
    const impi = `00101${String(i).padStart(10, '0')}@ims.example`;
    const portUe = 10000 + 2 * (i % 25000);
    const ue = { ip: ueIp, portC: portUe, portS: portUe + 1, spiC: 0, spiS: 0 };
    const pc = { ip: pcscfIp, portC: 5062, portS: 5064, spiC: 0, spiS: 0 };
    const mine = role === 'pcscf' ? pc : ue;
    const theirs = role === 'pcscf' ? ue : pc;
    [mine.spiC, mine.spiS] = backend.allocateSpis(mine.ip, 2);
    theirs.spiC = spiPeer++;
    theirs.spiS = spiPeer++;
    const common = {
      ue,
      pcscf: pc,
      alg: 'hmac-sha-1-96',
      ealg: 'aes-cbc',
      mode: 'udp-enc-tunnel',
      encap: { uePort: 4500, pcscfPort: 4500 },
    };
    const keys = expandKeys(ik, ck, 'hmac-sha-1-96', 'aes-cbc');
    const set = createSaSet({ ...common, role, id: `${impi}#${i + 1}`, keys, expiresAt: now + 60_000 });
    const other = createSaSet({ ...common, role: role === 'pcscf' ? 'ue' : 'pcscf', keys });
    // As the P-CSCF's registration table and the UE's SA table make them (closures included).
    const slots = new SaSlots({
      backend,
      clock,
      onDropped: (s: unknown) => void held.indexOf(s),
      onDeleted: (s: { id: string }, _e: unknown, reason: string) => void `${impi} ${s.id} ${reason}`,
      onSyncFailed: (s: { id: string }) => void s.id,
      ...(role === 'ue' && { keepOld: 'peer-switched' }),
    });
    await slots.installTemporary(set);
    peer.install(other);
    // The protected REGISTER (UE port_uc -> P-CSCF port_ps over SA1) and its 200 OK (ps -> uc over SA3).
    const [from, to] = role === 'pcscf' ? [peer, backend.sad] : [backend.sad, peer];
    const [sFrom, sTo] = role === 'pcscf' ? [other, set] : [set, other];
    const deliver = (sad: typeof peer, s: unknown, srcPort: number, dstPort: number, body: Uint8Array, src: string, dst: string) => {
      const sent = sad.send(s, srcPort, dstPort, body);
      return { src, dst, encap: { srcPort: 4500, dstPort: 4500 }, esp: sent.udpPayload };
    };
    let r = to.receiveEsp(deliver(from, sFrom, ue.portC, pc.portS, register, ueIp, pcscfIp));
    if (!r.ok) throw new Error(`REGISTER dropped: ${r.drop}`);
    slots.promote(set, now + 600_000);
    r = from.receiveEsp(deliver(to, sTo, pc.portS, ue.portC, ok, pcscfIp, ueIp));
    if (!r.ok) throw new Error(`200 OK dropped: ${r.drop}`);
    peer.remove(other);
    held.push(slots);
  };

  // Warm-up (compiled code, one-off tables), then the baseline.
  for (let i = 0; i < 300; i++) await one(n + i);
  for (const s of held.splice(0) as { deleteAll(e: string, r: string): Promise<void> }[]) await s.deleteAll('deleted', 'warm-up');
  const settle = (): NodeJS.MemoryUsage => {
    for (let k = 0; k < 4; k++) gc();
    return process.memoryUsage();
  };
  const m0 = settle();
  for (let i = 0; i < n; i++) await one(i);
  const m1 = settle();
  const f: Figures = {
    role,
    n,
    heapPerSet: (m1.heapUsed - m0.heapUsed) / n,
    rssPerSet: (m1.rss - m0.rss) / n,
    externalPerSet: (m1.external - m0.external) / n,
    arrayBuffersPerSet: (m1.arrayBuffers - m0.arrayBuffers) / n,
  };
  if (flag('snapshot')) f.top = breakdown(n);
  if (held.length !== n || backend.sets.length !== n) throw new Error('sets went missing');
  console.log(JSON.stringify(f));
  process.exit(0); // the backend's socket would keep the process alive
}

/** Self size by (type, constructor) over the whole heap, largest first (the N sets dominate it). */
function breakdown(n: number): { what: string; count: number; bytesPerSet: number }[] {
  const file = join(repo, '.bench-base', `sa-memory-${process.pid}.heapsnapshot`);
  mkdirSync(dirname(file), { recursive: true });
  writeHeapSnapshot(file);
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  rmSync(file);
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const w = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const by = new Map<string, { count: number; bytes: number }>();
  for (let o = 0; o < snap.nodes.length; o += w) {
    const type = types[snap.nodes[o + iType]!]!;
    const name = snap.strings[snap.nodes[o + iName]!]!;
    const what = type === 'object' || type === 'closure' || type === 'native' ? `${type} ${name.slice(0, 60)}` : type;
    const e = by.get(what) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[o + iSize]!;
    by.set(what, e);
  }
  return [...by.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 30)
    .map(([what, e]) => ({ what, count: e.count, bytesPerSet: e.bytes / n }));
}
