// The measuring side of bench/sa-memory.bench.ts, bundled by esbuild once per code base (the
// baseline's src/ is swapped in at bundle time) and run in a process of its own with plain node: no
// tsx wrappers (tsx names every closure with a defineProperty, which gives each one a ~256-byte
// property dictionary that the compiled dist/ does not have).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { UserspaceBackend } from '../src/ipsec/backends/userspace.ts';
import { expandKeys } from '../src/ipsec/keys.ts';
import { createSaSet, type SaSet, type SaSetConfig } from '../src/ipsec/sa-set.ts';
import { SaSlots, type SaSlotsDeps } from '../src/ipsec/sa-slots.ts';
import { Sad } from '../src/ipsec/sad.ts';
import type { Clock } from '../src/util/clock.ts';
import { HeapClock } from '../src/util/timer-heap.ts';
import { BENCH_SA_SET } from './support/bench-sa-set.ts';

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
  /** CPU µs per registration's SA work (both sets built, install, REGISTER in, promote, 200 OK out, the peer's copy removed), GC included. */
  setupUs: number;
  /** CPU ms of the --final-gc collection (0 without one). */
  finalGcMs: number;
  /** RSS per set that is not V8's heap (RSS growth less heapTotal growth): malloc'd memory, kept free lists. */
  rssOutsideHeapPerSet: number;
  /** Old space committed per set after the forced GC (V8's pages, used or not). */
  oldCommittedPerSet: number;
  /** --burst-kb: what the registration burst cost: CPU and wall ms for the N sets and their transient garbage, GC pause ms (main thread), transient heap per registration. */
  burst?: { cpuMs: number; wallMs: number; gcPauseMs: number; garbagePerReg: number; peakRssPerSet: number };
}

async function child(): Promise<void> {
  const role = arg('role', 'pcscf') as 'pcscf' | 'ue';
  const n = Number(arg('n', '20000'));
  const gc = (globalThis as { gc?: () => void }).gc!;

  // The clock the P-CSCF gives its registration table and `imsec load` its UEs (util/timer-heap.ts),
  // on a time that stands still (nothing expires while measuring).
  const now = 1_000_000;
  const clock: Clock = new HeapClock(() => now);
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
    const common = { ...BENCH_SA_SET, ue, pcscf: pc } as const satisfies Partial<SaSetConfig>;
    const keys = expandKeys(ik, ck, BENCH_SA_SET.alg, BENCH_SA_SET.ealg);
    const set = createSaSet({ ...common, role, id: `${impi}#${i + 1}`, keys, expiresAt: now + 60_000 });
    const other = createSaSet({ ...common, role: role === 'pcscf' ? 'ue' : 'pcscf', keys });
    // As the P-CSCF's registration table (pcscf/registrations.ts SlotHooks) and the UE's SA table
    // make them: one small object per registration whose methods are the callbacks.
    const hooks = role === 'ue' ? new Hooks(backend, clock, impi, 'peer-switched') : new Hooks(backend, clock, impi);
    const slots = new SaSlots(hooks);
    await slots.installTemporary(set);
    // The P-CSCF learns each set's ESP-in-UDP source from its first authenticated packet
    // (pcscf.ts #learnEncap) and keeps it on the registration: as in `imsec load` (one ephemeral
    // encapsulation port for all its UEs), not the configured 4500.
    if (role === 'pcscf') backend.setPeerEncap(set, (hooks.encap = { address: ueIp, port: 40000 }));
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
  // --final-gc last-resort: V8's memory-reducing collection (what it runs before giving up on an
  // allocation: compacts every fragmented page) once the sets are made, before the figures.
  const finalGc = arg('final-gc', 'regular');
  // --final-gc compact: compaction switched on for this one collection only (what a process could
  // do once after a burst, at no cost to the GCs of the burst itself).
  const gcFinal = (): void => {
    if (finalGc === 'last-resort') (gc as unknown as (o: object) => void)({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    if (finalGc === 'compact') {
      setFlagsFromString('--compact-on-every-full-gc');
      gc();
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
  // V8 gives freed pages back to the OS on a background task: a moment for it before RSS is read.
  const settleRss = async (): Promise<NodeJS.MemoryUsage> => {
    settle();
    await new Promise((r) => setTimeout(r, 300));
    return settle();
  };
  const oldCommitted = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_size;
  const m0 = await settleRss();
  const old0 = oldCommitted();
  const burstKb = Number(arg('burst-kb', '0'));
  let burst: Figures['burst'];
  const c0 = process.cpuUsage();
  if (burstKb > 0) burst = await burstPhase(n, burstKb, Number(arg('window', '32000')), one, m0.rss);
  else for (let i = 0; i < n; i++) await one(i);
  const c1 = process.cpuUsage(c0);
  const cf = process.cpuUsage();
  gcFinal();
  const dcf = process.cpuUsage(cf);
  const finalGcMs = (dcf.user + dcf.system) / 1000;
  const m1 = await settleRss();
  const f: Figures = {
    role,
    n,
    heapPerSet: (m1.heapUsed - m0.heapUsed) / n,
    rssPerSet: (m1.rss - m0.rss) / n,
    externalPerSet: (m1.external - m0.external) / n,
    arrayBuffersPerSet: (m1.arrayBuffers - m0.arrayBuffers) / n,
    setupUs: (c1.user + c1.system) / n,
    finalGcMs,
    oldCommittedPerSet: (oldCommitted() - old0) / n,
    rssOutsideHeapPerSet: (m1.rss - m1.heapTotal - (m0.rss - m0.heapTotal)) / n,
    ...(burst && { burst }),
  };
  if (flag('snapshot')) f.top = breakdown(n);
  if (flag('cpu')) f.cpu = cpuPhase();
  if (held.length !== n || backend.sets.length !== n) throw new Error('sets went missing');
  console.log(JSON.stringify(f));
  process.exit(0); // the backend's socket would keep the process alive
}

/**
 * The sets made as in a registration burst at a P-CSCF: each registration also leaves transient
 * objects shaped like its SIP transactions' (message texts, header slices, parsed records, a
 * Buffer) that live for the `window` registrations after it (a transaction's 32 s at the burst's
 * rate), so they are promoted to old space between the sets' objects and die there. Then all of
 * them go: what the forced GC leaves committed is the fragmentation a burst leaves behind.
 */
async function burstPhase(
  n: number,
  kb: number,
  window: number,
  one: (i: number) => Promise<void>,
  rss0: number,
): Promise<NonNullable<Figures['burst']>> {
  let gcPauseMs = 0;
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) gcPauseMs += e.duration;
  });
  obs.observe({ entryTypes: ['gc'] });
  const ring: unknown[] = new Array(window).fill(undefined);
  let peakRss = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await one(i);
    ring[i % window] = transactions(i, kb);
    if (i % 1000 === 0) {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      await new Promise((r) => setImmediate(r)); // an event-loop turn, as between datagrams (and the GC observer's delivery)
    }
  }
  ring.fill(undefined);
  const c = process.cpuUsage(c0);
  const wallMs = performance.now() - t0;
  // The transient heap of one registration, measured apart.
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  const h0 = process.memoryUsage().heapUsed;
  const probe = Array.from({ length: 2000 }, (_, i) => transactions(i, kb));
  gc();
  const garbagePerReg = (process.memoryUsage().heapUsed - h0) / probe.length;
  probe.length = 0;
  await new Promise((r) => setTimeout(r, 100));
  obs.disconnect();
  return { cpuMs: (c.user + c.system) / 1000, wallMs, gcPauseMs, garbagePerReg, peakRssPerSet: (peakRss - rss0) / n };
}

const SIP_LINE = 'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK';

/** About `kb` KB of objects in the shapes a SIP transaction leaves: texts, slices of them, small records, arrays, a Buffer. */
function transactions(i: number, kb: number): unknown {
  const out: unknown[] = [];
  for (let made = 0; made < kb * 1024;) {
    const text = `${SIP_LINE}${i.toString(36)}${made}\r\n`.repeat(12);
    const headers = text.split('\r\n').map((line, k) => ({ name: line.slice(0, 3), value: line.slice(5), k }));
    out.push({ text, headers, bytes: Buffer.from(text.slice(0, 256)), at: [i, made, i + made] });
    made += text.length + headers.length * 80 + 400;
  }
  return out;
}

/** SaSlots dependencies as the P-CSCF's SlotHooks and the UE's SlotsLink give them: methods on one object per registration. */
class Hooks implements SaSlotsDeps {
  encap: { address: string; port: number } | undefined;
  constructor(
    readonly backend: SaSlotsDeps['backend'],
    readonly clock: Clock,
    readonly impi: string,
    readonly keepOld?: 'peer-switched',
  ) {}
  onDropped(s: SaSet): void {
    void s.id;
  }
  onDeleted(s: SaSet, _e: unknown, reason: string): void {
    void `${this.impi} ${s.id} ${reason}`;
  }
  onSyncFailed(s: SaSet): void {
    void s.id;
  }
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

// Last: the classes and constants above are initialised by then.
await child();
