// npm run bench:sip [-- --n N] [-- --base REF] [-- --listen] [-- --no-tell] [-- --json]: the SIP layer's cost per registration
// exchange (REGISTER → 401 → REGISTER → 200 through a UE-side and a registrar-side TransactionLayer
// on an in-memory transport), old code against new in the same process:
// - CPU µs per exchange (process.cpuUsage over N exchanges, 200 in flight, both layers, GC included),
//   and within it the GC time and the V8 heap bytes allocated per exchange (V8's GCProfiler);
// - heap + ArrayBuffer bytes retained per transaction left in Completed (server: Timer J, 32 s;
//   client: Timer K), after a forced GC: each layer is closed in turn and the drop is divided by its
//   number of transactions.
// "old" is src/sip and src/util of REF (default: 184dc93, main before the issue-9 SIP work), taken
// with `git archive`; both sides are bundled by esbuild the same way (compiled, no tsx wrappers).
// A benchmark, not a test: on a shared machine the figures are noisy (the load average is printed).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GCProfiler, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { build } from 'esbuild';

type Sip = typeof import('../src/sip/index.ts');

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const N = Number(value('--n', '20000'));
const BASE = value('--base', '184dc93');
const ROUNDS = Number(value('--rounds', '3'));
const json = args.includes('--json');
/** `--listen`: the TUs listen for every transaction's end (onTerminated, as the P-CSCF's and the UE's do): a completed transaction's object is then kept until Timer J/K. */
const listen = args.includes('--listen');
/** `--no-tell`: the new layers get tellCompletedEnd: false (listening TUs are not told of Timer J/K ends). */
const noTell = args.includes('--no-tell');
/** `--only new` (or old): measure one side only, e.g. under --cpu-prof. */
const only = value('--only', '');
/** `--heap-snapshots DIR`: writes DIR/{completed,server-closed,client-closed}.heapsnapshot around the closes (diff them for where the bytes go). */
const snapshots = args.includes('--heap-snapshots') ? value('--heap-snapshots', '/tmp') : undefined;
const log = (s: string): void => void (json ? process.stderr : process.stdout).write(`${s}\n`);

/** Bundles `<root>/src/sip/index.ts` into one ESM file and imports it. */
async function load(root: string, out: string): Promise<Sip> {
  await build({
    entryPoints: [join(root, 'src/sip/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outfile: out,
    logLevel: 'error',
  });
  return (await import(pathToFileURL(out).href)) as Sip;
}

const tmp = mkdtempSync(join(tmpdir(), 'imsec-bench-sip-'));
let oldSip: Sip;
let newSip: Sip;
try {
  const baseDir = join(tmp, 'base');
  execFileSync('mkdir', ['-p', baseDir]);
  execFileSync('sh', ['-c', `git -C "${REPO}" archive ${BASE} src/sip src/util | tar -x -C "${baseDir}"`]);
  oldSip = await load(baseDir, join(tmp, 'old.mjs'));
  newSip = await load(REPO, join(tmp, 'new.mjs'));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const UE = { address: '192.0.2.10', port: 5060 };
const PCSCF = { address: '198.51.100.1', port: 5060 };
const DOMAIN = 'ims.example';

/** A TU that listens for transactions' ends (one shared object). */
const ENDS = { onTerminated: (): void => {} };

interface Side {
  readonly layer: InstanceType<Sip['TransactionLayer']>;
}

/** Two layers joined by a lossless in-memory "UDP" (a fresh receive context per datagram, as node:dgram gives). */
function pair(sip: Sip): { ue: Side; reg: Side; exchange: (i: number) => Promise<void> } {
  type Transport = import('../src/sip/index.ts').SipTransport;
  let ueLayer!: InstanceType<Sip['TransactionLayer']>;
  let regLayer!: InstanceType<Sip['TransactionLayer']>;
  const link = (local: typeof UE, deliver: () => InstanceType<Sip['TransactionLayer']>): Transport => {
    const t: Transport = {
      protocol: 'udp',
      local,
      send(bytes, to) {
        const copy = Buffer.from(bytes); // the datagram the peer's socket would hand up
        queueMicrotask(() =>
          deliver().receive(new Uint8Array(copy.buffer, copy.byteOffset, copy.length), {
            protocol: 'udp',
            local: { address: to.address, port: to.port },
            remote: { address: local.address, port: local.port },
            transport: local === UE ? regT : ueT,
          }),
        );
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
    return t;
  };
  const ueT = link(UE, () => regLayer);
  const regT = link(PCSCF, () => ueLayer);
  // Timer K is stretched so the UE side's transactions stay in Completed for the memory figure (J is 32 s as is).
  const timers = { t4: 120_000 };
  const tell = noTell ? { tellCompletedEnd: false } : {};
  ueLayer = new sip.TransactionLayer({ timers, ...tell, user: { onRequest: () => {} } });
  let nonce = 0;
  regLayer = new sip.TransactionLayer({
    timers,
    ...tell,
    user: {
      onRequest: (tx, req) => {
        if (listen) tx.user = ENDS;
        if (!req.headers.has('Authorization')) {
          const n = (nonce++).toString(16).padStart(8, '0');
          tx.respond(
            sip.createResponse(req, 401, undefined, [
              [
                'WWW-Authenticate',
                `Digest realm="${DOMAIN}", nonce="3q2+7wAAAAAAAAAAAAAAAAAAAAA${n}AAAAAAAAAAAAAAAAAAAAAAAAA==", algorithm=AKAv1-MD5, qop="auth"`,
              ],
              ['Security-Server', 'ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=11111;spi-s=22222;port-c=5062;port-s=5064;q=0.1'],
            ]),
          );
        } else {
          tx.respond(
            sip.createResponse(req, 200, undefined, [
              ['Contact', `${req.headers.get('Contact')};expires=600000`],
              ['Service-Route', `<sip:orig@scscf.${DOMAIN};lr>`],
              ['P-Associated-URI', `<${req.headers.get('To')!.slice(1, -1)}>`],
              ['Path', `<sip:term@pcscf.${DOMAIN};lr>`],
            ]),
          );
        }
      },
    },
  });
  // One callbacks object for every transaction, the waiting ones in a table they leave at their final
  // response: what a client transaction in Completed holds is then the layer's doing only.
  const waiting = new Map<unknown, { resolve: (status: number) => void; reject: (e: Error) => void }>();
  const ueUser = {
    onResponse: (res: { status: number }, _ctx: unknown, tx: unknown) => {
      if (res.status < 200) return;
      waiting.get(tx)?.resolve(res.status);
      waiting.delete(tx);
    },
    onTimeout: (tx: unknown) => waiting.get(tx)?.reject(new Error('timeout')),
    ...(listen ? ENDS : {}),
  };
  const register = (i: number, auth: boolean): Promise<number> => {
    const impi = `00101${String(i).padStart(10, '0')}@${DOMAIN}`;
    const req = sip.createRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      via: `SIP/2.0/UDP ${UE.address}:${UE.port};branch=${sip.newBranch()};rport`,
      from: `<sip:${impi}>;tag=${sip.newTag()}`,
      to: `<sip:${impi}>`,
      callId: sip.newCallId(),
      cseq: auth ? 2 : 1,
      headers: [
        [
          'Contact',
          `<sip:${UE.address}:${UE.port}>;+sip.instance="<urn:gsma:imei:35209900-176148-0>";+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`,
        ],
        ['Expires', '600000'],
        ['Supported', 'path, sec-agree'],
        ['Require', 'sec-agree'],
        ['Proxy-Require', 'sec-agree'],
        ['Security-Client', 'ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=33333;spi-s=44444;port-c=5066;port-s=5068'],
        [
          'Authorization',
          auth
            ? `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="3q2+7wAAAAAAAAAAAAAAAAAAAAA", response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="0a4f113b"`
            : `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`,
        ],
        ['User-Agent', 'imsec-bench'],
      ].filter(([n]) => auth || n !== 'Authorization') as [string, string][],
    });
    return new Promise(
      (resolve, reject) => void waiting.set(ueLayer.sendRequest(req, { transport: ueT, to: PCSCF }, ueUser), { resolve, reject }),
    );
  };
  const exchange = async (i: number): Promise<void> => {
    if ((await register(i, false)) !== 401) throw new Error('expected 401');
    if ((await register(i, true)) !== 200) throw new Error('expected 200');
  };
  return { ue: { layer: ueLayer }, reg: { layer: regLayer }, exchange };
}

/** Runs n exchanges, `inFlight` at a time. */
async function run(exchange: (i: number) => Promise<void>, from: number, n: number, inFlight = 200): Promise<void> {
  let next = from;
  const end = from + n;
  const worker = async (): Promise<void> => {
    while (next < end) await exchange(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

const heap = (): number => {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

interface Figures {
  cpu_us: number;
  gc_us: number;
  alloc_b: number;
  server_b: number;
  client_b: number;
}

/**
 * V8 heap bytes allocated and GC time while `f` runs, from V8's GC profiler: what each collection
 * found in use before it, less what the previous one left (allocation is CPU: GC is 15-20 % of each
 * process's busy time in bench:load).
 */
async function allocation<T>(f: () => Promise<T>): Promise<{ value: T; bytes: number; gcUs: number }> {
  const profiler = new GCProfiler();
  const u0 = getHeapStatistics().used_heap_size;
  profiler.start();
  const value = await f();
  const data = profiler.stop() as unknown as { statistics: GcRecord[] };
  const u1 = getHeapStatistics().used_heap_size;
  let bytes = 0;
  let gcUs = 0;
  let after = u0;
  for (const g of data.statistics) {
    bytes += g.beforeGC.heapStatistics.usedHeapSize - after;
    after = g.afterGC.heapStatistics.usedHeapSize;
    gcUs += g.cost;
  }
  return { value, bytes: bytes + u1 - after, gcUs };
}
interface GcRecord {
  readonly cost: number;
  readonly beforeGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
  readonly afterGC: { readonly heapStatistics: { readonly usedHeapSize: number } };
}

/** CPU per exchange over N fresh exchanges, then the bytes the layers' Completed transactions hold. */
async function measure(sip: Sip): Promise<Figures> {
  const p = pair(sip);
  await run(p.exchange, 0, 2000); // warm-up (JIT), then let the layers forget it
  p.ue.layer.close();
  p.reg.layer.close();
  const q = pair(sip);
  const m0 = heap();
  const c0 = process.cpuUsage();
  const a = await allocation(() => run(q.exchange, 0, N));
  const c = process.cpuUsage(c0);
  const serverTxs = q.reg.layer.serverTransactionCount;
  const clientTxs = q.ue.layer.clientTransactionCount;
  if (serverTxs !== 2 * N || clientTxs !== 2 * N) throw new Error(`expected ${2 * N} transactions, got ${serverTxs} / ${clientTxs}`);
  const snap = (name: string) => snapshots && writeHeapSnapshot(join(snapshots, `${name}.heapsnapshot`));
  const m1 = heap();
  snap('completed');
  q.reg.layer.close();
  const m2 = heap();
  snap('server-closed');
  q.ue.layer.close();
  const m3 = heap();
  snap('client-closed');
  void m0;
  return {
    cpu_us: (c.user + c.system) / N,
    gc_us: a.gcUs / N,
    alloc_b: a.bytes / N,
    server_b: (m1 - m2) / serverTxs,
    client_b: (m2 - m3) / clientTxs,
  };
}

log(
  `bench:sip: N=${N} exchanges (REGISTER→401→REGISTER→200), ${ROUNDS} rounds alternating old (${BASE}) / new${listen ? ', TUs listening for ends' : ''}${noTell ? ', tellCompletedEnd: false' : ''}; load average ${loadavg()[0]!.toFixed(2)}`,
);
const results: { old: Figures[]; new: Figures[] } = { old: [], new: [] };
for (let r = 0; r < ROUNDS; r++) {
  if (only !== 'new') results.old.push(await measure(oldSip));
  if (only !== 'old') results.new.push(await measure(newSip));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! ?? NaN;
const pick = (fs: Figures[], k: keyof Figures) => median(fs.map((f) => f[k]));
const rows = (['cpu_us', 'gc_us', 'alloc_b', 'server_b', 'client_b'] as const).map((k) => ({
  figure: k,
  old: Math.round(pick(results.old, k) * 10) / 10,
  new: Math.round(pick(results.new, k) * 10) / 10,
  ratio: Math.round((pick(results.new, k) / pick(results.old, k)) * 1000) / 1000,
  spread_new: results.new.map((f) => Math.round(f[k])),
}));
const labels = {
  cpu_us: 'CPU µs per exchange (both layers)',
  gc_us: 'GC pause µs per exchange (wall, V8)',
  alloc_b: 'B of V8 heap allocated per exchange',
  server_b: 'B retained per server tx in Completed',
  client_b: 'B retained per client tx in Completed',
};
for (const r of rows)
  log(
    `${labels[r.figure].padEnd(40)} old ${String(r.old).padStart(8)}  new ${String(r.new).padStart(8)}  new/old ${r.ratio}  (new per round: ${r.spread_new.join(', ')})`,
  );
log(`load average after: ${loadavg()[0]!.toFixed(2)} (a shared machine: CPU figures are noisy, compare the ratio)`);
if (json) process.stdout.write(`${JSON.stringify({ n: N, base: BASE, listen, rows, loadavg: loadavg()[0] })}\n`);
