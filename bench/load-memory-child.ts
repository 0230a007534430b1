// The measuring side of bench/load-memory.bench.ts, bundled by esbuild once per code base (the
// baseline's src/ is swapped in at bundle time) and run in a process of its own with plain node (no
// tsx wrappers, as dist/ runs). It drives `imsec load`'s engine in this process against the P-CSCF and
// core the parent started: N UEs register; once the registration burst's transactions have ended
// (Timer K = T4 = 5 s after the last answer), a forced GC and heap / RSS per registered UE; CPU of
// this process per registration over the registration phase; then everyone de-registers (the P-CSCF
// is left clean for the next child). Prints one JSON line.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { writeHeapSnapshot } from 'node:v8';
import { UserspaceBackend } from '../src/ipsec/backends/userspace.ts';
import { LoadEngine } from '../src/load/engine.ts';
import { commonKeys } from '../src/load/keys.ts';
import { subscriberRange } from '../src/load/pattern.ts';
import { fromHex } from '../src/util/bytes.ts';
import { systemClock } from '../src/util/clock.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};

/** What one child reports. */
export interface LoadFigures {
  n: number;
  registered: number;
  failures: number;
  heapPerUe: number;
  rssPerUe: number;
  externalPerUe: number;
  cpuMsPerRegistration: number;
  refreshed: number;
  deregistered: number;
  setsLeft: number;
}

await child();

async function child(): Promise<void> {
  const n = Number(arg('n', '3000'));
  const pcscf = arg('pcscf', '127.0.0.1:5060');
  const encap = Number(arg('encap', '4500'));
  const local = arg('local', '127.0.1.1');
  const expires = Number(arg('expires', '3600'));
  const settleMs = Number(arg('settle', '6000'));
  const snapshot = arg('snapshot', '');
  // --alloc-prof FILE: V8's sampling heap profiler over the registration phase, counting the
  // objects GC collected too (what this process allocates per registration, i.e. its GC work).
  const allocProf = arg('alloc-prof', '');
  const gc = (globalThis as { gc?: () => void }).gc!;
  const fullGc = (): void => {
    gc();
    gc();
  };
  const [address, port] = [pcscf.slice(0, pcscf.lastIndexOf(':')), Number(pcscf.slice(pcscf.lastIndexOf(':') + 1))];
  const backend = await UserspaceBackend.create({ localIp: local, encapPort: 0, clock: systemClock });
  const range = subscriberRange({ impi: `00101{n:10}@${arg('domain', 'ims.example')}`, count: n });
  fullGc();
  if (snapshot) writeHeapSnapshot(snapshot.replace(/\.heapsnapshot$/, '-before.heapsnapshot'));
  fullGc();
  const m0 = process.memoryUsage();
  let figures: Omit<LoadFigures, 'refreshed' | 'deregistered' | 'setsLeft'> | undefined;
  const engine = new LoadEngine({
    range,
    keys: commonKeys({ k: fromHex('465b5ce8b199b49faa5f0a2ee238a6bc'), opc: fromHex('cd63cb71954a9f4e48a5994e37a02baf') }),
    pcscf: { address, port },
    pcscfEncapPort: encap,
    locals: [{ ip: local, backend }],
    modes: ['UDP-enc-tun'],
    rate: Number(arg('rate', '1000')),
    rampMs: 0,
    concurrency: Number(arg('concurrency', '100')),
    holdMs: settleMs + 2000 + Number(arg('hold', '0')),
    expires,
    messageRate: Number(arg('message-rate', '0')),
    churnRate: 0,
    deregister: true,
    intervalMs: 3_600_000,
  });
  const session = allocProf ? new Session() : undefined;
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((res, rej) => session!.post(method, params, (e, r) => (e ? rej(e) : res(r))));
  if (session) {
    session.connect();
    await post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const cpu0 = process.cpuUsage();
  engine.onAllRegistered = () => {
    const cpu = process.cpuUsage(cpu0);
    if (session)
      void post('HeapProfiler.stopSampling').then((r) => {
        writeFileSync(allocProf, JSON.stringify((r as { profile: unknown }).profile));
        session.disconnect();
      });
    const registered = engine.registered;
    setTimeout(() => {
      fullGc();
      const m = process.memoryUsage();
      const k = engine.registered || 1;
      figures = {
        n,
        registered,
        failures: engine.stats.failuresTotal,
        heapPerUe: (m.heapUsed - m0.heapUsed) / k,
        rssPerUe: (m.rss - m0.rss) / k,
        externalPerUe: (m.external - m0.external) / k,
        cpuMsPerRegistration: (cpu.user + cpu.system) / 1000 / (registered || 1),
      };
      if (snapshot) writeHeapSnapshot(snapshot);
    }, settleMs);
  };
  await engine.run();
  const setsLeft = engine.setsLeftAtEnd;
  await backend.close();
  const out: LoadFigures = {
    ...figures!,
    refreshed: engine.stats.outcomes.refreshed,
    deregistered: engine.stats.outcomes.deregistered,
    setsLeft,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}
