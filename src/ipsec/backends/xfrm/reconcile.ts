// Reconcile instead of flush: dump the kernel's SAs and policies and delete only those whose
// selector carries this backend's tag (xfrm_selector.user) and that no installed set owns, i.e.
// what a crashed run left behind. Everything else in the SAD/SPD is someone else's and stays.
import { delPolicyMessage, delSaMessage, dumpPolicyMessage, dumpSaMessage, parsePolicy, parseSa } from './messages.ts';
import { policyKey } from './plan.ts';
import { ENOENT, ESRCH, type XfrmTransport } from './socket.ts';
import { IPPROTO_ESP } from './structs.ts';

export interface ReconcileResult {
  readonly deletedSas: number;
  readonly deletedPolicies: number;
  /** Entries left alone: not ours (other tag or none), or owned by a live set. */
  readonly kept: number;
}

/**
 * `ownedSas`: keys `dst|spi` (dst in RFC 5952 text) of SAs a live set owns; `ownsPolicy(key)`
 * with plan.ts policyKey. Deletion races (already gone) count as deleted.
 */
export function reconcile(
  nl: XfrmTransport,
  tag: number,
  ownedSas: ReadonlySet<string>,
  ownsPolicy: (key: string) => boolean,
): ReconcileResult {
  let deletedSas = 0;
  let deletedPolicies = 0;
  let kept = 0;
  for (const sa of nl.dump(dumpSaMessage(nl.nextSeq()), 'reconcile: dump SAs', parseSa)) {
    if (sa.proto !== IPPROTO_ESP || sa.sel?.user !== tag || ownedSas.has(`${sa.dst}|${sa.spi}`)) {
      kept++;
      continue;
    }
    try {
      nl.request(
        delSaMessage({ family: sa.family, dst: sa.dst, spi: sa.spi }, nl.nextSeq()),
        `reconcile: DELSA spi 0x${sa.spi.toString(16)} dst ${sa.dst}`,
      );
    } catch (e) {
      if ((e as { errno?: number }).errno !== ESRCH) throw e;
    }
    deletedSas++;
  }
  for (const p of nl.dump(dumpPolicyMessage(nl.nextSeq()), 'reconcile: dump policies', parsePolicy)) {
    if (!p.sel || !p.dir || p.sel.user !== tag || ownsPolicy(policyKey(p.dir, p.sel))) {
      kept++;
      continue;
    }
    try {
      nl.request(delPolicyMessage({ dir: p.dir, index: p.index }, nl.nextSeq()), `reconcile: DELPOLICY index ${p.index} dir ${p.dir}`);
    } catch (e) {
      if ((e as { errno?: number }).errno !== ENOENT) throw e;
    }
    deletedPolicies++;
  }
  return { deletedSas, deletedPolicies, kept };
}
