// The P-CSCF's two hooks into its state store (issue 13 §3), kept out of the registration logic:
// after each registration event, what changed is written (a new 200 OK or refresh: the registration
// with its current set; the end of a registration: forgotten); at start, the stored registrations
// are installed again as if their 200 OK had just gone out. Unauthenticated attempts never reach
// the store (only a registration that had a 200 OK is written or forgotten).
import { boundOf, type Bound, type RegState } from './registration-state.ts';
import type { PcscfCore } from './core.ts';
import type { Registration } from './registrations.ts';
import type { PcscfState } from './state.ts';
import type { RegistrationRecord } from './state-store.ts';
import { encryptionAlgOfToken, integrityAlgOfToken } from '../ipsec/algorithms.ts';
import { parseSecurityHeaderOrThrow, type SecMechanism } from '../secagree/index.ts';

/** The stored form of a registered registration (its bound state without set ids and times). */
export function recordOf(reg: Registration): RegistrationRecord | undefined {
  const b = reg.bound;
  if (!b) return undefined;
  const { current: _c, old: _o, expiresAt, lifetime, ...rest } = b;
  const encap = reg.ue.encap;
  return {
    v: 1,
    impi: reg.impi,
    expiresAt,
    lifetime,
    bound: rest as unknown as Record<string, unknown>,
    ...(encap && { encap: { address: encap.address, port: encap.port } }),
  };
}

/**
 * The Bound of a stored record, its current set `current` (old sets join it as the table restores
 * them). Records written before issue 9 §2 hold the Security-Server parsed (`lastServer`) and/or as
 * text (`lastServerText`): the Bound takes what it was made of (SPIs, algorithms) from it; and the
 * UE's addresses as `ue: { ip, innerIp }`.
 */
export function boundOfRecord(record: RegistrationRecord, current: string): Bound {
  const { lastServer, lastServerText, ue, ...stored } = record.bound as {
    lastServer?: readonly SecMechanism[];
    lastServerText?: string;
    serverSpiC?: number;
    ue?: { ip: string; innerIp?: string };
  };
  const older =
    stored.serverSpiC === undefined
      ? (lastServer?.[0] ?? (lastServerText !== undefined ? parseSecurityHeaderOrThrow(lastServerText, 'Security-Server')[0] : undefined))
      : undefined;
  return {
    ...stored,
    // Before issue 9 §2 the UE's addresses were an object of their own.
    ...(ue && { ueIp: ue.ip, innerIp: ue.innerIp }),
    ...(older && {
      serverSpiC: (older.spiC ?? 0) | 0,
      serverSpiS: (older.spiS ?? 0) | 0,
      alg: integrityAlgOfToken(older.alg ?? ''),
      ealg: encryptionAlgOfToken(older.ealg ?? 'null'),
    }),
    current,
    old: [],
    expiresAt: record.expiresAt,
    lifetime: record.lifetime,
  } as unknown as Bound;
}

/** The PcscfCore.persist hook over `state`. */
export function persistTo(state: PcscfState): (reg: Registration, before?: RegState) => void {
  return (reg, before) => {
    const was = before === undefined ? undefined : boundOf(before);
    const now = reg.bound;
    if (!now) {
      if (was) state.forget(reg.impi);
      return;
    }
    if (before !== undefined && was === now) return;
    const set = reg.current;
    const record = recordOf(reg);
    if (set && record && set.id === now.current) state.save(record, set, reg.old);
  };
}

/**
 * How long a restored old set waits for a transaction over it (RFC 3261 Timer F, 64·T1 with T1 =
 * 500 ms): the peer's transactions that kept it when this process died are over by then.
 */
export const RESTORED_OLD_GRACE_MS = 32_000;

/** What a start with a state store restored, and what of a previous run it removed (xfrm: kernel orphans). */
export interface RestoreReport {
  readonly restored: number;
  readonly orphans?: { readonly deletedSas: number; readonly deletedPolicies: number };
}

/**
 * Installs every stored registration of this node (the xfrm backend adopts the SAs the kernel kept),
 * then lets the backend remove what is its own and no restored set owns. Before the P-CSCF serves anything.
 */
export async function restoreRegistrations(
  core: PcscfCore,
  state: PcscfState,
  onFailed?: (impi: string, e: Error) => void,
): Promise<RestoreReport> {
  let n = 0;
  for (const r of state.load()) {
    const reg = core.table.getOrNew(r.record.impi);
    const bound = boundOfRecord(r.record, r.set.id);
    try {
      await core.table.restore(reg, r.set, bound, r.old, RESTORED_OLD_GRACE_MS, (set, e) =>
        onFailed?.(r.record.impi, new Error(`old SA set ${set.id} not restored: ${e.message}`)),
      );
    } catch (e) {
      // One registration the backend will not take (e.g. its SPIs are in use): that UE registers
      // again; the others are served.
      onFailed?.(r.record.impi, e instanceof Error ? e : new Error(String(e)));
      state.forget(r.record.impi);
      continue;
    }
    const encap = r.record.encap;
    if (encap && r.set.config.mode === 'udp-enc-tunnel') {
      reg.encap = encap;
      core.backend.setPeerEncap(r.set, encap);
    }
    // Written again: the outbound marks move one block past the restored counters.
    state.save(recordOf(reg)!, r.set, reg.old);
    n++;
  }
  // Orphans: a previous run's SAs and policies whose registration is not (or no longer) stored.
  const orphans = core.backend.reconcile?.();
  return { restored: n, ...(orphans && { orphans: { deletedSas: orphans.deletedSas, deletedPolicies: orphans.deletedPolicies } }) };
}
