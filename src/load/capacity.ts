// What a load run needs from the host before any UE starts: file descriptors and protected ports.
// Userspace backend (README "Load testing"): one ESP-in-UDP socket per local address carries every
// UE's SAs (RFC 3948: inbound ESP is demultiplexed by SPI), the protected ports port_uc/port_us
// exist only inside the SAs (no socket), and the unprotected socket is bound only while an initial
// registration runs. So descriptors grow with --concurrency and the addresses, not with the UEs;
// the ports still must differ per UE on one address (the P-CSCF tells UEs' flows apart by them).
// xfrm backend: each protected port is a kernel socket, so two or three descriptors per UE.
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.ts';

/** The UE's protected port range (UeOptions.portRange default, M.7.1 rule 6). */
export const PROTECTED_PORTS = 60000 - 20000 + 1;
/**
 * UEs one local address holds: each holds two protected ports, three during a refresh (new
 * port_uc); a random pick retries on a taken port (64 tries), so at most ~40 % of them taken.
 */
export const UES_PER_ADDRESS = 5000;
/** Descriptors the process needs besides the UEs' (stdio, the event loop, the key store, CSV). */
const FD_BASE = 64;

export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

/** RLIMIT_NOFILE from /proc/self/limits (Linux; node raises the soft limit to the hard one at start). */
export function openFileLimit(text?: string): FdLimit | undefined {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(t);
  if (!m) return undefined;
  const n = (s: string) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/** Descriptors a run needs at most. */
export function descriptorsNeeded(o: { count: number; locals: number; concurrency: number; backend: string }): number {
  const perUe = o.backend === 'xfrm' ? 3 : 0;
  return FD_BASE + o.locals + Math.min(o.concurrency, o.count) + perUe * o.count;
}

/** Throws a clear InputError when the run cannot fit the host's descriptor limit or port ranges. */
export function assertCapacity(o: {
  count: number;
  locals: number;
  concurrency: number;
  backend: string;
  limit: FdLimit | undefined;
}): void {
  if (o.backend !== 'xfrm' && o.count > o.locals * UES_PER_ADDRESS) {
    const need = Math.ceil(o.count / UES_PER_ADDRESS);
    throw new InputError(
      `--count ${o.count} over ${o.locals} local address${o.locals === 1 ? '' : 'es'}: at most ${UES_PER_ADDRESS} UEs per address ` +
        `(each UE's protected ports must differ on one address; ${PROTECTED_PORTS} ports, 2–3 per UE); give at least ${need} with --local (e.g. a CIDR of 127.0.0.0/8)`,
    );
  }
  const need = descriptorsNeeded(o);
  if (o.limit && need > o.limit.soft) {
    const how =
      o.backend === 'xfrm'
        ? `about 3 per UE with --backend xfrm (kernel sockets on the protected ports); use the userspace backend (none per UE) or fewer UEs`
        : `one ESP-in-UDP socket per local address and one unprotected socket per registration in flight; lower --concurrency`;
    throw new InputError(
      `this run needs about ${need} file descriptors but the limit is ${o.limit.soft} (ulimit -n; hard limit ${o.limit.hard === Infinity ? 'unlimited' : o.limit.hard}): ${how}, or raise the limit (ulimit -n, within ulimit -Hn)`,
    );
  }
}
