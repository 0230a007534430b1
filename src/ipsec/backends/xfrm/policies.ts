// The XFRM policies imsec owns, one per (direction, selector), shared by the SA sets whose SAs
// have that selector (old, current and temporary sets keep the server ports, spec digest §6.1/§8).
// Each policy's template points at one owner's SA: the one a send asks for, else the best set
// (current > temporary > old, newest first). Lifetime: the latest hard expiry of its owners.
import type { Sa } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import type { PolicyDir, TmplSpec } from './messages.ts';
import { delPolicyMessage, policyMessage } from './messages.ts';
import { hardSeconds, policyKey, tmplKey, tmplOf, type KernelPeer } from './plan.ts';
import { ENOENT, type XfrmTransport } from './socket.ts';
import type { XfrmSelector } from './structs.ts';

export interface PolicyOwner {
  readonly set: SaSet;
  readonly sa: Sa;
  readonly reqid: number;
  /** Install order (newer wins among sets in the same state). */
  readonly order: number;
  /** Where the SA points now (setPeerEncap can move outbound SAs). */
  peer(): KernelPeer;
}

interface Entry {
  readonly key: string;
  readonly dir: PolicyDir;
  readonly sel: XfrmSelector;
  readonly owners: Map<SaSet, PolicyOwner>;
  written?: { tmpl: string; expiresAt: number | undefined; owner: SaSet };
  /** The kernel may hold this policy already (a previous run's, adopted at a restart): the first write replaces it. */
  adopted?: boolean;
}

const RANK = { current: 0, temporary: 1, old: 2, deleted: 3 } as const;

/** Best owner: current > temporary > old (> deleted), newest install first. */
export function bestOwner<T extends { set: SaSet; order: number }>(owners: Iterable<T>): T | undefined {
  let best: T | undefined;
  for (const o of owners) {
    if (!best || RANK[o.set.state] < RANK[best.set.state] || (RANK[o.set.state] === RANK[best.set.state] && o.order > best.order)) best = o;
  }
  return best;
}

export class PolicyTable {
  readonly #entries = new Map<string, Entry>();
  /** The entries each set owns a share of (resync per set without a scan). */
  readonly #bySet = new Map<SaSet, Set<Entry>>();

  constructor(
    private readonly nl: XfrmTransport,
    private readonly priority: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /**
   * Adds an owner, creating or re-pointing the kernel policy. Returns the undo (for rollback).
   * `adopt`: a previous run of this backend may have left the policy in the kernel (UPDPOLICY, which
   * replaces it or creates it, instead of NEWPOLICY).
   */
  add(dir: PolicyDir, sel: XfrmSelector, owner: PolicyOwner, adopt = false): () => void {
    const key = policyKey(dir, sel);
    let e = this.#entries.get(key);
    const created = !e;
    if (!e) {
      e = { key, dir, sel, owners: new Map(), ...(adopt && { adopted: true }) };
      this.#entries.set(key, e);
    }
    const entry = e;
    this.#own(entry, owner);
    try {
      this.#sync(entry, undefined);
    } catch (err) {
      this.#disown(entry, owner.set);
      if (created) this.#entries.delete(key);
      throw err;
    }
    return () => {
      this.#disown(entry, owner.set);
      if (entry.owners.size === 0) this.#drop(entry);
      else this.#sync(entry, undefined);
    };
  }

  /** Removes a set from a policy; deletes the policy when nobody is left. */
  remove(dir: PolicyDir, sel: XfrmSelector, set: SaSet): void {
    const e = this.#entries.get(policyKey(dir, sel));
    if (!e || !e.owners.has(set)) return;
    this.#disown(e, set);
    if (e.owners.size === 0) this.#drop(e);
    else this.#sync(e, undefined);
  }

  /** Points the policy at `set`'s SA (a send pinned to a set), or at the best owner. */
  point(dir: PolicyDir, sel: XfrmSelector, set?: SaSet): void {
    const e = this.#entries.get(policyKey(dir, sel));
    if (e) this.#sync(e, set);
  }

  /** Re-evaluates every policy owned by `set` (state or lifetime changed, peer moved). */
  resync(set?: SaSet): void {
    for (const e of set ? [...(this.#bySet.get(set) ?? [])] : [...this.#entries.values()]) this.#sync(e, undefined);
  }

  /** Owners of the policy with this key (for the inbound context lookup). */
  owners(dir: PolicyDir, sel: XfrmSelector): PolicyOwner[] {
    return [...(this.#entries.get(policyKey(dir, sel))?.owners.values() ?? [])];
  }

  /** Forgets everything (the kernel side is gone, e.g. after reconcile at close). */
  clear(): void {
    this.#entries.clear();
    this.#bySet.clear();
  }

  #own(e: Entry, owner: PolicyOwner): void {
    e.owners.set(owner.set, owner);
    const s = this.#bySet.get(owner.set) ?? new Set<Entry>();
    s.add(e);
    this.#bySet.set(owner.set, s);
  }

  #disown(e: Entry, set: SaSet): void {
    e.owners.delete(set);
    const s = this.#bySet.get(set);
    s?.delete(e);
    if (s && s.size === 0) this.#bySet.delete(set);
  }

  #sync(e: Entry, want: SaSet | undefined): void {
    const owner = (want && e.owners.get(want)) ?? bestOwner(e.owners.values());
    if (!owner) return;
    const tmpl: TmplSpec = tmplOf(owner.sa, e.dir, owner.reqid, owner.peer());
    let expiresAt: number | undefined = 0;
    for (const o of e.owners.values()) {
      const x = o.set.expiresAt;
      expiresAt = x === undefined || expiresAt === undefined ? undefined : Math.max(expiresAt, x);
    }
    const tk = tmplKey(tmpl);
    const w = e.written;
    if (w && w.tmpl === tk && w.expiresAt === expiresAt) return;
    const spec = { sel: e.sel, dir: e.dir, priority: this.priority, hardSeconds: hardSeconds(expiresAt, this.now()), tmpl };
    const update = !!w || e.adopted === true;
    const step = `${update ? 'UPDPOLICY' : 'NEWPOLICY'} dir ${e.dir} ${e.sel.src}:${e.sel.sport} -> ${e.sel.dst}:${e.sel.dport} (set ${owner.set.id} ${owner.sa.name})`;
    this.nl.request(policyMessage(spec, { seq: this.nl.nextSeq(), update }), step);
    e.written = { tmpl: tk, expiresAt, owner: owner.set };
  }

  #drop(e: Entry): void {
    this.#entries.delete(e.key);
    if (!e.written) return;
    const step = `DELPOLICY dir ${e.dir} ${e.sel.src}:${e.sel.sport} -> ${e.sel.dst}:${e.sel.dport}`;
    try {
      this.nl.request(delPolicyMessage({ dir: e.dir, sel: e.sel }, this.nl.nextSeq()), step);
    } catch (err) {
      // Already gone (expired in the kernel or deleted by hand): that is what we wanted.
      if ((err as { errno?: number }).errno !== ENOENT) throw err;
    }
  }
}
