// `--local`: the local addresses UEs are spread over, as a list (a,b,c) or a CIDR (127.0.1.0/28,
// 2001:db8::/120). Each is checked by binding a UDP socket to it: an address the host does not
// have is one clear error before any UE starts.
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { InputError } from '../util/errors.ts';

const MAX_ADDRESSES = 4096;

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}
function intToV4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
function v6ToBig(a: string): bigint {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}
function bigToV6(n: bigint): string {
  const g: string[] = [];
  for (let i = 7; i >= 0; i--) g.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  return g
    .join(':')
    .replace(/(^|:)0(:0)+(:|$)/, '::')
    .replace(/:{3,}/, '::');
}

/** Expands the `--local` text into addresses (no I/O). */
export function parseLocal(text: string): string[] {
  const out: string[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(.+)\/(\d{1,3})$/.exec(part);
    if (!m) {
      if (isIP(part) === 0) throw new InputError(`--local: not an IP address: ${JSON.stringify(part)}`);
      out.push(part);
      continue;
    }
    const [, base, lenText] = m as unknown as [string, string, string];
    const len = Number(lenText);
    const fam = isIP(base);
    if (fam === 4) {
      if (len > 32) throw new InputError(`--local: prefix length /${len} > 32 in ${part}`);
      const size = 2 ** (32 - len);
      const net = Math.floor(v4ToInt(base) / size) * size;
      // A /31 or /32 has no network/broadcast address; a larger one skips both.
      const [lo, hi] = size <= 2 ? [net, net + size - 1] : [net + 1, net + size - 2];
      if (hi - lo + 1 + out.length > MAX_ADDRESSES)
        throw new InputError(`--local: ${part} has ${hi - lo + 1} addresses; at most ${MAX_ADDRESSES} in all`);
      for (let n = lo; n <= hi; n++) out.push(intToV4(n));
    } else if (fam === 6) {
      if (len > 128) throw new InputError(`--local: prefix length /${len} > 128 in ${part}`);
      if (128 - len > 12) throw new InputError(`--local: ${part} is too large; at most ${MAX_ADDRESSES} addresses (a /116 or longer)`);
      const size = 1n << BigInt(128 - len);
      const net = (v6ToBig(base) / size) * size;
      const lo = size > 1n ? net + 1n : net; // skip the subnet-router anycast address
      for (let n = lo; n < net + size; n++) out.push(bigToV6(n));
      if (out.length > MAX_ADDRESSES) throw new InputError(`--local: at most ${MAX_ADDRESSES} addresses in all`);
    } else {
      throw new InputError(`--local: not an address/prefix: ${JSON.stringify(part)}`);
    }
  }
  if (out.length === 0) throw new InputError('--local: no address given');
  const fams = new Set(out.map((a) => isIP(a)));
  if (fams.size > 1) throw new InputError('--local: mixes IPv4 and IPv6 addresses; use one family (that of the P-CSCF)');
  return [...new Set(out)];
}

/** Binds a UDP socket to each address: the host must have it (EADDRNOTAVAIL otherwise). */
export async function assertConfigured(addresses: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const a of addresses) {
    const s = createSocket(isIP(a) === 6 ? 'udp6' : 'udp4');
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      s.once('error', (e) => resolve(e));
      s.bind(0, a, () => resolve(undefined));
    });
    s.close();
    if (err) missing.push(`${a} (${err.code ?? err.message})`);
  }
  if (missing.length) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, … ${missing.length - 5} more` : '');
    throw new InputError(`--local: not configured on this host: ${shown}; add them (e.g. ip addr add ADDR/32 dev lo) or pick others`);
  }
}
