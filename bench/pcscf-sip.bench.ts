// npm run bench:pcscf-sip [-- --base REF] [-- --rounds R] [-- --n N]: the SIP work the P-CSCF does for one
// REGISTER, old code (REF's src, default main) against new, in one process: parse the datagram, validate it
// (the transaction layer), read the To's impuKey and the IMPI, make the forwarded copy (Max-Forwards,
// sec-agree headers off, integrity-protected, our Via, Path), validate it again (sendRequest) and
// serialize it, then a 200 cloned without our Via and serialized (the relay). Both sides are bundled by
// esbuild the same way (compiled, no tsx wrappers); R rounds of N iterations alternate old/new (order
// flipped each round); printed: the best round of each (µs per REGISTER) and the median of the per-round
// ratios after 10 warm-up rounds. A benchmark, not a test: on a shared machine the figures are noisy,
// compare the ratios (an old-vs-old run, `--base` the working tree's HEAD, shows the noise).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import type { SipRequest } from '../src/sip/index.ts';

/** What a bundle exports (the same for old and new: only these names are used). */
type Mod = typeof import('../src/sip/index.ts') &
  Pick<typeof import('../src/pcscf/rewrite.ts'), 'forwardCopy' | 'stripSecAgree' | 'markIntegrityProtected' | 'pushVia' | 'impiOf'> &
  Pick<typeof import('../src/pcscf/decisions.ts'), 'uriOf' | 'impuKey'>;
const REPO = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const BASE = value('--base', 'main');
const ROUNDS = Number(value('--rounds', '60'));
const N = Number(value('--n', '2000'));
/** The bundle's entry: the SIP layer and the P-CSCF helpers of `root` (absolute paths: the file sits in a temporary folder). */
const entry = (root: string) =>
  [
    `export * from '${join(root, 'src/sip/index.ts')}';`,
    `export { forwardCopy, stripSecAgree, markIntegrityProtected, pushVia, impiOf } from '${join(root, 'src/pcscf/rewrite.ts')}';`,
    `export { uriOf, impuKey } from '${join(root, 'src/pcscf/decisions.ts')}';`,
  ].join('\n');
/** Bundles the SIP layer and the P-CSCF's rewrite/decision helpers of `root` into one ESM file and imports it. */
async function load(root: string, out: string): Promise<Mod> {
  const file = `${out}.entry.ts`;
  writeFileSync(file, entry(root));
  await build({
    entryPoints: [file],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
  });
  return (await import(pathToFileURL(out).href)) as Mod;
}
// In the repository, so the bundles' npm imports resolve; removed once imported.
const tmp = mkdtempSync(join(REPO, '.bench-pcscf-sip-'));
const baseDir = join(tmp, 'base');
execFileSync('mkdir', ['-p', baseDir]);
execFileSync('sh', ['-c', `git -C "${REPO}" archive ${BASE} src | tar -x -C "${baseDir}"`]);
const O = await load(baseDir, join(tmp, 'old.mjs'));
const Nw = await load(REPO, join(tmp, 'new.mjs'));
rmSync(tmp, { recursive: true, force: true });
/** A protected REGISTER of UE `n` (two UEs alternate: nothing kept from the previous REGISTER helps the next). */
const registerText = (n: number): string => {
  const impi = `00101000000000${n}@ims.example`;
  return [
    'REGISTER sip:ims.example SIP/2.0',
    'Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK1x2;rport',
    'Max-Forwards: 70',
    `From: <sip:${impi}>;tag=f1`,
    `To: <sip:${impi}>`,
    'Call-ID: call-1',
    'CSeq: 2 REGISTER',
    `Contact: <sip:0010100000001@198.51.100.7:5063>;expires=600`,
    `Authorization: Digest username="${impi}", realm="ims.example", uri="sip:ims.example", nonce="I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=", response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="0a4f113b"`,
    'Require: sec-agree',
    'Proxy-Require: sec-agree',
    'Supported: path, sec-agree',
    'Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=10000;spi-s=10001;port-c=5062;port-s=5063;mod=UDP-enc-tun',
    'Security-Verify: ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=20000;spi-s=20001;port-c=5100;port-s=6100;mod=UDP-enc-tun',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
};
const datagrams = [1, 2].map((n) => new TextEncoder().encode(registerText(n)));
/** One REGISTER through the P-CSCF's SIP steps (a result returned so nothing is optimised away). */
function work(M: Mod, bytes: Uint8Array): number {
  const req = M.parseMessageOrThrow(bytes) as SipRequest;
  const v = M.validateRequest(req);
  let x = v.ok ? 1 : 0;
  x += M.impuKey(M.uriOf(req.headers.get('To') ?? '') ?? '')?.length ?? 0;
  x += M.impiOf(req)?.length ?? 0;
  const out = M.forwardCopy(req, () => false)!;
  M.stripSecAgree(out);
  M.markIntegrityProtected(out, true);
  M.pushVia(out, '192.0.2.1', 5060);
  out.headers.prepend('Path', '<sip:term@192.0.2.1:5060;lr>');
  x += M.validateRequest(out).ok ? 1 : 0;
  x += M.serializeMessage(out).length;
  const res = M.createResponse(out, 200);
  const r2 = res.clone();
  r2.headers.removeFirst('Via');
  x += M.serializeMessage(r2).length;
  return x;
}
const sides: [string, Mod][] = [
  ['old', O],
  ['new', Nw],
];
const best: Record<string, number> = { old: Infinity, new: Infinity };
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const t: Record<string, number> = {};
  for (const [name, M] of r % 2 ? sides : [...sides].reverse()) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) work(M, datagrams[i & 1]!);
    t[name] = Number(process.hrtime.bigint() - t0) / N / 1000;
    best[name] = Math.min(best[name]!, t[name]!);
  }
  if (r >= 10) ratios.push(t.new! / t.old!);
}
ratios.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    base: BASE,
    us_per_register_best_round: { old: +best.old!.toFixed(2), new: +best.new!.toFixed(2) },
    ratio_new_over_old_best: +(best.new! / best.old!).toFixed(3),
    ratio_new_over_old_median_of_rounds: +ratios[ratios.length >> 1]!.toFixed(3),
    loadavg: loadavg().map((x) => +x.toFixed(1)),
  }),
);
