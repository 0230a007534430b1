// npm run bench:esp-frame [-- --base REF] [-- --json]: the per-packet cost of the ESP datapath as the
// userspace backend runs it, old code against new in the same process:
// - seal: sealToWire (inner IP/UDP headers, ESP seal) and the send-side `udpPayload`;
// - open: EspInbound.open then parseInner (replay, ICV, decrypt, inner headers, checksum).
// For udp-enc-tunnel over IPv4 and transport over IPv4, hmac-sha-1-96 + aes-cbc, an 800-octet SIP
// payload: CPU µs per packet (process.cpuUsage over many packets) and bytes allocated per packet
// (V8 heap + ArrayBuffer growth over batches that saw no GC, median). "old" is src/ of REF (default
// 99effdb, main before this work) taken with `git archive`; both sides are bundled by esbuild the same
// way (compiled, no tsx wrappers). A benchmark, not a test: on a shared machine the CPU figures are
// noisy (the load average is printed); the allocation figures are not.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { build } from 'esbuild';

type Esp = typeof import('../src/ipsec/esp/index.ts') & { expandKeys: typeof import('../src/ipsec/keys.ts').expandKeys };
type SaParams = import('../src/ipsec/types.ts').SaParams;

const REPO = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const BASE = value('--base', '99effdb');
const N = Number(value('--n', '20000'));
const json = args.includes('--json');
const log = (s: string): void => void (json ? process.stderr : process.stdout).write(`${s}\n`);

/** Bundles the ESP engine (and expandKeys) of `root` into one ESM file and imports it. */
async function load(root: string, out: string): Promise<Esp> {
  const entry = join(root, 'esp-bench-entry.ts');
  execFileSync('sh', [
    '-c',
    `printf "%s\\n" "export * from './src/ipsec/esp/index.ts';" "export { expandKeys } from './src/ipsec/keys.ts';" > "${entry}"`,
  ]);
  try {
    await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: out, logLevel: 'error' });
  } finally {
    rmSync(entry, { force: true });
  }
  return (await import(pathToFileURL(out).href)) as Esp;
}

const tmp = mkdtempSync(join(tmpdir(), 'imsec-bench-esp-'));
let oldEsp: Esp;
let newEsp: Esp;
try {
  const baseDir = join(tmp, 'base');
  execFileSync('mkdir', ['-p', baseDir]);
  execFileSync('sh', ['-c', `git -C "${REPO}" archive ${BASE} src | tar -x -C "${baseDir}"`]);
  oldEsp = await load(baseDir, join(tmp, 'old.mjs'));
  newEsp = await load(REPO, join(tmp, 'new.mjs'));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const ik = randomBytes(16);
const ck = randomBytes(16);
const payload = randomBytes(800);

function params(esp: Esp, mode: SaParams['mode']): SaParams {
  const keys = esp.expandKeys(ik, ck, 'hmac-sha-1-96', 'aes-cbc');
  const base = {
    spi: 0x1234,
    src: '192.0.2.1',
    dst: '198.51.100.2',
    srcPort: 5062,
    dstPort: 5064,
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    keys,
  } as const;
  return mode === 'transport'
    ? { ...base, mode }
    : { ...base, mode, innerSrc: '10.45.0.7', innerDst: '198.51.100.2', encap: { srcPort: 4500, dstPort: 4500 } };
}

/** CPU µs per call of fn over n calls. */
function cpuPer(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(2000, n); i++) fn(i); // warm
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

/** Bytes allocated per call: heap + ArrayBuffer growth over batches of 100 that saw no collection (median). */
function bytesPer(fn: (i: number) => void, batches = 60): number {
  const got: number[] = [];
  let i = 0;
  for (let b = 0; b < batches * 4 && got.length < batches; b++) {
    const h0 = getHeapStatistics().used_heap_size;
    const a0 = process.memoryUsage().arrayBuffers;
    for (let k = 0; k < 100; k++) fn(i++);
    const dh = getHeapStatistics().used_heap_size - h0;
    const da = process.memoryUsage().arrayBuffers - a0;
    if (dh >= 0 && da >= 0) got.push((dh + da) / 100);
  }
  got.sort((x, y) => x - y);
  return got[got.length >> 1] ?? NaN;
}

interface Row {
  name: string;
  old_us: number;
  new_us: number;
  cpu_ratio: number;
  old_bytes: number;
  new_bytes: number;
}
const rows: Row[] = [];

for (const mode of ['udp-enc-tunnel', 'transport'] as const) {
  const seg = { srcPort: 5062, dstPort: 5064, payload };
  const sides = [oldEsp, newEsp].map((esp) => {
    const sa = params(esp, mode);
    const out = esp.createOutbound(sa);
    const seal = () => esp.sealToWire(sa, out, seg).udpPayload;
    // Packets to open: made up front (the window takes each number once).
    const packets = Array.from({ length: 2 * N + 10_000 }, seal);
    const inb = esp.createInbound(sa);
    let next = 0;
    const open = () => {
      const r = inb.open(packets[next++]!);
      if (!r.ok || !esp.parseInner(sa.mode, r.nextHeader, r.payload, sa)) throw new Error('bench: a packet did not open');
    };
    return { seal, open };
  });
  for (const op of ['seal', 'open'] as const) {
    // Interleaved halves, so drift in the machine's load hits both sides alike.
    const us = [0, 0];
    for (let round = 0; round < 2; round++) for (const s of [0, 1]) us[s]! += cpuPer(N / 2, sides[s]![op]) / 2;
    const bytes = [0, 1].map((s) => bytesPer(sides[s]![op], op === 'open' ? 20 : 60));
    rows.push({
      name: `${mode} ${op}`,
      old_us: +us[0]!.toFixed(2),
      new_us: +us[1]!.toFixed(2),
      cpu_ratio: +(us[1]! / us[0]!).toFixed(2),
      old_bytes: Math.round(bytes[0]!),
      new_bytes: Math.round(bytes[1]!),
    });
  }
}

log(
  `esp-frame bench: old = ${BASE}, payload 800 octets, hmac-sha-1-96 + aes-cbc, loadavg ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} (shared machine: CPU figures are noisy)`,
);
if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
else {
  log('case                    old µs   new µs  ratio   old B/pkt  new B/pkt');
  for (const r of rows)
    log(
      `${r.name.padEnd(22)} ${r.old_us.toFixed(2).padStart(7)}  ${r.new_us.toFixed(2).padStart(7)}  ${r.cpu_ratio.toFixed(2).padStart(5)}  ${String(r.old_bytes).padStart(9)}  ${String(r.new_bytes).padStart(9)}`,
    );
}
