// The measuring side of bench/milenage.bench.ts, bundled by esbuild once per code base (the baseline's
// src/ swapped in at bundle time) and run with plain node in a process of its own. Prints one JSON line:
// CPU µs per call of the HSS's vector path (generateVector) and the USIM's check (Usim.respond), with
// one K for every call (a lab's common K) and with a new K every call (per-subscriber keys).
import { randomBytes } from 'node:crypto';
import { Usim, generateVector } from '../src/aka/index.ts';

const argv = process.argv.slice(2);
const n = Number(argv[argv.indexOf('--n') + 1] ?? '20000');

/** What one process reports. */
export interface MilenageFigures {
  vector_common_k_us: number;
  vector_per_ue_k_us: number;
  usim_common_k_us: number;
  usim_per_ue_k_us: number;
}

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

// Inputs made before timing; each case runs once untimed (JIT warm-up), then timed, best of 3.
function measure(fn: (i: number) => void): number {
  let best = Infinity;
  for (let round = 0; round < 4; round++) {
    const t0 = cpu();
    for (let i = 0; i < n; i++) fn(i);
    const us = (cpu() - t0) / n;
    if (round > 0) best = Math.min(best, us);
  }
  return +best.toFixed(3);
}

const K = randomBytes(16);
const OPC = randomBytes(16);
const AMF = new Uint8Array([0x80, 0]);
const KEYS = Array.from({ length: 1024 }, () => randomBytes(16));
const USIMS_COMMON = Array.from({ length: 1024 }, () => new Usim({ k: K, opc: OPC, acceptAnySqn: true }));
const USIMS_OWN = KEYS.map((k) => new Usim({ k, opc: OPC, acceptAnySqn: true }));
const AV_COMMON = Array.from({ length: 1024 }, (_, i) => generateVector({ k: K, opc: OPC, sqn: 32 * (i + 1), amf: AMF }));
const AV_OWN = KEYS.map((k, i) => generateVector({ k, opc: OPC, sqn: 32 * (i + 1), amf: AMF }));

const figures: MilenageFigures = {
  vector_common_k_us: measure((i) => void generateVector({ k: K, opc: OPC, sqn: 32 * (i + 1), amf: AMF })),
  vector_per_ue_k_us: measure((i) => void generateVector({ k: KEYS[i & 1023]!, opc: OPC, sqn: 32 * (i + 1), amf: AMF })),
  usim_common_k_us: measure((i) => {
    const av = AV_COMMON[i & 1023]!;
    if (USIMS_COMMON[i & 1023]!.respond(av.rand, av.autn).result !== 'ok') throw new Error('USIM refused');
  }),
  usim_per_ue_k_us: measure((i) => {
    const av = AV_OWN[i & 1023]!;
    if (USIMS_OWN[i & 1023]!.respond(av.rand, av.autn).result !== 'ok') throw new Error('USIM refused');
  }),
};
process.stdout.write(JSON.stringify(figures) + '\n');
