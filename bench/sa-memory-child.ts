// The measuring side of bench/sa-memory.bench.ts, bundled by esbuild once per code base (the
// baseline's src/ is swapped in at bundle time) and run in a process of its own with plain node: no
// tsx wrappers (tsx names every closure with a defineProperty, which gives each one a ~256-byte
// property dictionary that the compiled dist/ does not have).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { UserspaceBackend } from '../src/ipsec/backends/userspace.ts';
import { expandKeys } from '../src/ipsec/keys.ts';
import { createSaSet, type SaSet, type SaSetConfig } from '../src/ipsec/sa-set.ts';
import { SaSlots } from '../src/ipsec/sa-slots.ts';
import { Sad } from '../src/ipsec/sad.ts';
import type { Clock } from '../src/util/clock.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const flag = (name: string): boolean => argv.includes(`--${name}`);

/** What one process reports (bytes per set after a forced GC). */
export interface Figures {
  role: 'pcscf' | 'ue';
  n: number;
  heapPerSet: number;
  rssPerSet: number;
  externalPerSet: number;
  arrayBuffersPerSet: number;
  top?: { what: string; count: number; bytesPerSet: number }[];
  /** --cpu: CPU µs per protected REGISTER in + 200 OK out over an installed set: one set again and again, and round-robin over 4,000 sets. */
  cpu?: { hotUs: number; coldUs: number };
}

await child();

async function child(): Promise<void> {
  const role = arg('role', 'pcscf') as 'pcscf' | 'ue';
  const n = Number(arg('n', '20000'));
  const gc = (globalThis as { gc?: () => void }).gc!;

  // A clock whose timers cost what a real one's do per set (one object, one cancel closure), without
  // ManualClock's O(n) cancel.
  let now = 1_000_000;
  const timers = new Set<object>();
  const clock: Clock = {
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
  const held: SaSlots[] = [];
  let spiPeer = 0x10000;

  const one = async (i: number): Promise<void> => {
    const impi = `00101${String(i).padStart(10, '0')}@ims.example`;
    const portUe = 10000 + 2 * (i % 25000);
    const ue = { ip: ueIp, portC: portUe, portS: portUe + 1, spiC: 0, spiS: 0 };
    const pc = { ip: pcscfIp, portC: 5062, portS: 5064, spiC: 0, spiS: 0 };
    const mine = role === 'pcscf' ? pc : ue;
    const theirs = role === 'pcscf' ? ue : pc;
    [mine.spiC, mine.spiS] = backend.allocateSpis(mine.ip, 2) as [number, number];
    theirs.spiC = spiPeer++;
    theirs.spiS = spiPeer++;
    const common = {
      ue,
      pcscf: pc,
      alg: 'hmac-sha-1-96',
      ealg: 'aes-cbc',
      mode: 'udp-enc-tunnel',
      encap: { uePort: 4500, pcscfPort: 4500 },
    } as const satisfies Partial<SaSetConfig>;
    const keys = expandKeys(ik, ck, 'hmac-sha-1-96', 'aes-cbc');
    const set = createSaSet({ ...common, role, id: `${impi}#${i + 1}`, keys, expiresAt: now + 60_000 });
    const other = createSaSet({ ...common, role: role === 'pcscf' ? 'ue' : 'pcscf', keys });
    // As the P-CSCF's registration table and the UE's SA table make them (closures included).
    const slots = new SaSlots({
      backend,
      clock,
      onDropped: (s) => void s.id,
      onDeleted: (s, _e, reason) => void `${impi} ${s.id} ${reason}`,
      onSyncFailed: (s) => void s.id,
      ...(role === 'ue' && { keepOld: 'peer-switched' as const }),
    });
    await slots.installTemporary(set);
    peer.install(other);
    // The protected REGISTER (UE port_uc -> P-CSCF port_ps over SA1) and its 200 OK (ps -> uc over SA3).
    const [from, to] = role === 'pcscf' ? [peer, backend.sad] : [backend.sad, peer];
    const [sFrom, sTo] = role === 'pcscf' ? [other, set] : [set, other];
    const deliver = (sad: Sad, s: SaSet, srcPort: number, dstPort: number, body: Uint8Array, src: string, dst: string) => {
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

  /**
   * Per-packet CPU after the memory figures: the peer gets its sets back (resuming past the numbers
   * already used), then round trips run over one set (its transform and CBC contexts stay) and
   * round-robin over 4,000 sets (more than the transform and CBC context caches hold).
   */
  const cpuPhase = (): { hotUs: number; coldUs: number } => {
    const m = Math.min(4000, held.length);
    const pairs = held.slice(0, m).map((slots) => {
      const set = slots.current!;
      const c = set.config;
      const other = createSaSet({
        ue: c.ue,
        pcscf: c.pcscf,
        alg: c.alg,
        ealg: c.ealg,
        mode: c.mode,
        ...(c.encap && { encap: c.encap }),
        role: role === 'pcscf' ? 'ue' : 'pcscf',
        keys: set.sas.SA1.params.keys,
        // Its outbound SAs go on past the numbers the first peer set used (its inbound ones start fresh).
        resume: role === 'pcscf' ? { SA1: 10, SA4: 10 } : { SA2: 10, SA3: 10 },
      });
      peer.install(other);
      return [set, other, c.ue, c.pcscf] as const;
    });
    const fromIsPeer = role === 'pcscf';
    const trip = (k: number): void => {
      const [set, other, ue, pc] = pairs[k]!;
      const [from, to, sFrom, sTo] = fromIsPeer ? [peer, backend.sad, other, set] : [backend.sad, peer, set, other];
      const a = from.send(sFrom, ue.portC, pc.portS, register);
      if (!to.receiveEsp({ src: ueIp, dst: pcscfIp, encap: { srcPort: 4500, dstPort: 4500 }, esp: a.udpPayload }).ok)
        throw new Error('cpu: REGISTER dropped');
      const b = to.send(sTo, pc.portS, ue.portC, ok);
      if (!from.receiveEsp({ src: pcscfIp, dst: ueIp, encap: { srcPort: 4500, dstPort: 4500 }, esp: b.udpPayload }).ok)
        throw new Error('cpu: 200 OK dropped');
    };
    const time = (rounds: number, pick: (r: number) => number): number => {
      const t0 = process.cpuUsage();
      for (let r = 0; r < rounds; r++) trip(pick(r));
      const d = process.cpuUsage(t0);
      return (d.user + d.system) / rounds;
    };
    time(4000, (r) => r % m); // warm-up
    const rounds = 20000;
    return { hotUs: time(rounds, () => 0), coldUs: time(rounds, (r) => r % m) };
  };

  // Warm-up (compiled code, one-off tables), then the baseline.
  for (let i = 0; i < 300; i++) await one(n + i);
  for (const s of held.splice(0)) await s.deleteAll('deleted', 'warm-up');
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
  if (flag('cpu')) f.cpu = cpuPhase();
  if (held.length !== n || backend.sets.length !== n) throw new Error('sets went missing');
  console.log(JSON.stringify(f));
  process.exit(0); // the backend's socket would keep the process alive
}

/** Self size by (type, constructor) over the whole heap, largest first (the N sets dominate it). */
function breakdown(n: number): { what: string; count: number; bytesPerSet: number }[] {
  const file = join(process.cwd(), '.bench-base', `sa-memory-${process.pid}.heapsnapshot`);
  mkdirSync(dirname(file), { recursive: true });
  writeHeapSnapshot(file);
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  if (!process.env.KEEP_SNAPSHOT) rmSync(file);
  else console.error(`heap snapshot kept: ${file}`);
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const w = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  // Internal arrays, numbers and strings are named after their first retainer (which object's which field).
  const ef = snap.snapshot.meta.edge_fields;
  const ew = ef.length;
  const eType = ef.indexOf('type');
  const eName = ef.indexOf('name_or_index');
  const eTo = ef.indexOf('to_node');
  const edgeTypes = snap.snapshot.meta.edge_types[0];
  const iEdges = fields.indexOf('edge_count');
  const label = (o: number): string => {
    const type = types[snap.nodes[o + iType]!]!;
    const name = snap.strings[snap.nodes[o + iName]!]!;
    return type === 'object' || type === 'closure' || type === 'native' ? `${type} ${name.slice(0, 50)}` : type;
  };
  const retainer = new Map<number, string>();
  for (let o = 0, e = 0; o < snap.nodes.length; o += w) {
    const count = snap.nodes[o + iEdges]!;
    for (let k = 0; k < count; k++, e += ew) {
      const to = snap.edges[e + eTo]!;
      if (retainer.has(to)) continue;
      const et = edgeTypes[snap.edges[e + eType]!]!;
      if (et === 'weak') continue;
      const en = et === 'element' || et === 'hidden' ? `[${et}]` : snap.strings[snap.edges[e + eName]!]!;
      retainer.set(to, `${label(o)}.${en}`);
    }
  }
  const by = new Map<string, { count: number; bytes: number }>();
  for (let o = 0; o < snap.nodes.length; o += w) {
    const type = types[snap.nodes[o + iType]!]!;
    const base = label(o);
    const what = type === 'object' || type === 'closure' || type === 'native' ? base : `${base} <- ${retainer.get(o) ?? '?'}`;
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
