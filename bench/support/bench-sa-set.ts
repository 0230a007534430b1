// The SA set parameters the in-process memory benches (bench:sa-memory, bench:pcscf-memory-table)
// install per registration: what `npm run bench:load` negotiates (HMAC-SHA-1-96, AES-CBC,
// UDP-encapsulated tunnel on port 4500 at both ends), so their bytes per set are the load run's.
import type { SaSetConfig } from '../../src/ipsec/sa-set.ts';

export const BENCH_SA_SET = {
  alg: 'hmac-sha-1-96',
  ealg: 'aes-cbc',
  mode: 'udp-enc-tunnel',
  encap: { uePort: 4500, pcscfPort: 4500 },
} as const satisfies Partial<SaSetConfig>;
