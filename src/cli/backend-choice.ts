// `--backend userspace|xfrm` of `imsec pcscf` and `imsec ue`: the flag, and opening the backend.
// xfrm asks the kernel first (preflight.ts), so a missing addon, CAP_NET_ADMIN or ESP is one clear
// error before any SIP; its SAs carry TCP too, the userspace engine's only UDP.
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import { UserspaceBackend, type UserspaceBackendOptions } from '../ipsec/backends/userspace.ts';
import { XfrmBackend } from '../ipsec/backends/xfrm/backend.ts';
import { PROBE_INSTANCE, xfrmPreflight } from '../ipsec/backends/xfrm/preflight.ts';
import { isIP } from 'node:net';
import { NAT_T_PORT } from '../ipsec/types.ts';
import type { Clock } from '../util/clock.ts';
import { InputError } from '../util/errors.ts';

export type BackendKind = 'userspace' | 'xfrm';

export const BACKEND_HELP =
  'IPsec backend: userspace (ESP in this process) or xfrm (Linux kernel SAs; needs CAP_NET_ADMIN and a kernel with ESP)';
export const XFRM_INSTANCE_HELP =
  "xfrm: the ownership-tag instance 0..65534 (default: from the pid); a restart with the same one removes a crashed run's SAs";

export function parseBackend(text: string | undefined): BackendKind {
  const b = (text ?? 'userspace').toLowerCase();
  if (b === 'userspace' || b === 'xfrm') return b;
  throw new InputError(`--backend must be userspace or xfrm, got ${JSON.stringify(text)}`);
}

/**
 * The xfrm instance of a P-CSCF with a state store when none is given: the same for the same
 * ADDR:PORT run after run (FNV-1a of it), so a restart recognises its kernel SAs as its own. Two
 * P-CSCFs on one host differ by their listen address or port; should their numbers collide, give
 * each an explicit --xfrm-instance.
 */
export function instanceOfNode(node: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(node, 'utf8')) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return h % PROBE_INSTANCE;
}

export function parseXfrmInstance(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n < PROBE_INSTANCE))
    throw new InputError(`--xfrm-instance must be 0..${PROBE_INSTANCE - 1}, got ${JSON.stringify(text)}`);
  return n;
}

/** SIP over TCP inside the SAs needs the xfrm backend (kernel SAs protect any protocol). */
export function assertTransport(transport: string | undefined, backend: BackendKind): 'udp' | 'tcp' {
  const t = (transport ?? 'udp').toLowerCase();
  if (t !== 'udp' && t !== 'tcp') throw new InputError(`--transport must be udp or tcp, got ${JSON.stringify(transport)}`);
  if (t === 'tcp' && backend !== 'xfrm') {
    throw new InputError(
      '--transport tcp: SIP over TCP inside userspace SAs is not supported; use udp, or --backend xfrm (a kernel with ESP)',
    );
  }
  return t;
}

export interface OpenBackendOptions {
  readonly localIp: string;
  /** Local ESP-in-UDP port; 0 = any (userspace only: xfrm takes 4500 then). */
  readonly encapPort: number;
  /** The clock the SA sets' expiry is in: the UE's / P-CSCF's. */
  readonly clock: Clock;
  readonly instance?: number;
  /** xfrm: remove this instance's leftovers at start (default true; false when a state store restores them first). */
  readonly reconcile?: boolean;
  /** Each inbound ESP drop of the userspace engine (the kernel's drops are its own counters). */
  readonly onDrop?: UserspaceBackendOptions['onDrop'];
}

export async function openBackend(kind: BackendKind, o: OpenBackendOptions): Promise<IpsecBackend> {
  // The kernel gets hard lifetimes relative to this clock: it must be the one the UE / P-CSCF use.
  if (kind === 'userspace')
    return UserspaceBackend.create({ localIp: o.localIp, encapPort: o.encapPort, clock: o.clock, ...(o.onDrop && { onDrop: o.onDrop }) });
  xfrmPreflight(isIP(o.localIp) === 6 ? 6 : 4);
  return XfrmBackend.create({
    instance: o.instance ?? process.pid % PROBE_INSTANCE,
    encapPort: o.encapPort || NAT_T_PORT,
    clock: o.clock,
    ...(o.reconcile === false && { reconcile: false }),
  });
}
