// What the P-CSCF keeps in its state store (issue 13 §3), between the registration logic and the
// store (state-store.ts): a registered UE's registration and current SA set are written at each
// registration event (200 OK, refresh, NAT mapping moved) and forgotten when it ends; at start
// they are read back, keys unsealed, sets rebuilt past their sequence-number marks. The marks
// themselves are written by MarkBatcher: synchronously when a packet needs it, otherwise batched
// behind the traffic (one transaction per event-loop turn), and tightened after a quiet spell.
//
// Times: the P-CSCF's clock is monotonic and starts anew with the process, so stored times are
// wall-clock milliseconds, converted on the way in and out.
import type { SaName } from '../ipsec/sa.ts';
import { decodeKeys, encodeKeys, restoreSaSet, saSetKeys, saSetRecord, SA_NAMES, type SaSetRecord } from '../ipsec/sa-set-record.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import { DEFAULT_SEQ_MARK_POLICY, type SeqMark, type SeqMarkPolicy, type SeqMarkWriter } from '../ipsec/seq-marks.ts';
import type { Clock } from '../util/clock.ts';
import type { KeySealer } from './state-keys.ts';
import { setKeyOf, type MarkWrite, type NodeInfo, type PcscfStateStore, type RegistrationRecord, type StoredSet } from './state-store.ts';

export interface PcscfStateOptions {
  readonly store: PcscfStateStore;
  readonly sealer: KeySealer;
  /** This P-CSCF's plain address and port: its rows in a shared store. */
  readonly node: string;
  readonly clock: Clock;
  /** Wall-clock ms (default Date.now): stored times outlive the process's monotonic clock. */
  readonly wallNow?: () => number;
  readonly policy?: SeqMarkPolicy;
  /** A quiet inbound SA's mark comes back down after this long (default 2000 ms). */
  readonly tightenMs?: number;
  /** A store write that failed (the registration goes on in memory; a restart would lose it). */
  readonly onError?: (what: string, e: Error) => void;
}

/** A registration read back from the store, its current and old sets rebuilt (not yet installed anywhere). */
export interface RestoredRegistration {
  readonly record: RegistrationRecord;
  readonly set: SaSet;
  readonly old: readonly SaSet[];
}

let restored = 0;

export class PcscfState {
  readonly marks: MarkBatcher;
  readonly #o: PcscfStateOptions;
  readonly #wall: () => number;

  constructor(o: PcscfStateOptions) {
    this.#o = o;
    this.#wall = o.wallNow ?? Date.now;
    this.marks = new MarkBatcher(o.store, {
      ...(o.tightenMs !== undefined && { tightenMs: o.tightenMs }),
      onError: (e) => this.#failed('sequence-number marks', e),
      // A mark is an UPDATE of rows a queued put creates: the queue goes first, in order.
      before: () => this.flush(),
    });
  }

  get kind(): 'sqlite' | 'postgres' {
    return this.#o.store.kind;
  }
  get keysSealed(): boolean {
    return this.#o.sealer.encrypted;
  }

  get node(): string {
    return this.#o.node;
  }

  nodeInfo(): NodeInfo | undefined {
    return this.#o.store.node(this.#o.node);
  }

  setNodeInfo(info: NodeInfo): void {
    this.#o.store.setNode(this.#o.node, info);
  }

  /** Clock ms ↔ wall ms. */
  toWall(t: number): number {
    return Math.round(this.#wall() + (t - this.#o.clock.now()));
  }
  fromWall(w: number): number {
    return this.#o.clock.now() + (w - this.#wall());
  }

  /**
   * Every registration of this node still unexpired, its current set rebuilt past its marks. An
   * expired one is forgotten; a row that does not open (a wrong state key) throws: starting
   * without it would silently drop registrations.
   */
  load(): RestoredRegistration[] {
    this.flush();
    const out: RestoredRegistration[] = [];
    const now = this.#wall();
    for (const r of this.#o.store.load(this.#o.node)) {
      // Rows come back in no particular order: the current set by its state.
      const current = r.sets.find((x) => x.record.state === 'current');
      if (!current || r.record.expiresAt <= now || r.record.lifetime <= now) {
        this.#o.store.remove(this.#o.node, r.record.impi);
        continue;
      }
      const set = this.#rebuild(r.record.impi, current);
      // An old set past its own lifetime is not brought back (its timer would delete it at once).
      const old = r.sets
        .filter((x) => x.record.state === 'old' && (x.record.expiresAt === undefined || x.record.expiresAt > now))
        .map((x) => this.#rebuild(r.record.impi, x));
      out.push({
        record: { ...r.record, expiresAt: this.fromWall(r.record.expiresAt), lifetime: this.fromWall(r.record.lifetime) },
        set,
        old,
      });
    }
    return out;
  }

  #rebuild(impi: string, s: StoredSet): SaSet {
    const keys = decodeKeys(this.#o.sealer.open(s.keys, s.key));
    // A fresh id: the new process numbers its own sets from 1 again.
    const rec: SaSetRecord = {
      ...s.record,
      id: `${impi}#r${++restored}`,
      ...(s.record.expiresAt !== undefined && { expiresAt: this.fromWall(s.record.expiresAt) }),
    };
    const set = restoreSaSet(rec, keys, s.marks);
    keys.ikEsp.fill(0);
    keys.ckEsp.fill(0);
    return set;
  }

  /**
   * Writes a registration with its current set and its old ones (times in clock ms; converted
   * here). Marks: a set already tracked keeps its durable ones; a new set starts a block ahead of
   * its outbound counters and exactly at its inbound ones, and from then on is tracked.
   */
  save(record: RegistrationRecord, set: SaSet, old: readonly SaSet[] = []): void {
    const policy = this.#o.policy ?? DEFAULT_SEQ_MARK_POLICY;
    const sets = [set, ...old.filter((o) => o.live && o.state === 'old')].map((x) => {
      const key = setKeyOf(this.#o.node, x.config.pcscf.spiC, x.config.pcscf.spiS);
      const marks = {} as Record<SaName, number>;
      for (const name of SA_NAMES) {
        const sa = x.sas[name];
        marks[name] = sa.seqMark?.durable ?? (sa.direction === 'out' ? Math.min(0xffffffff, sa.seq + policy.outBlock) : sa.seq);
      }
      const r = saSetRecord(x);
      return {
        set: x,
        row: {
          key,
          record: { ...r, ...(r.expiresAt !== undefined && { expiresAt: this.toWall(r.expiresAt) }) },
          keys: this.#o.sealer.seal(encodeKeys(saSetKeys(x)), key),
          marks,
        },
      };
    });
    const row = {
      record: { ...record, expiresAt: this.toWall(record.expiresAt), lifetime: this.toWall(record.lifetime) },
      sets: sets.map((x) => x.row),
    };
    this.#enqueue(`registration ${record.impi}`, () => this.#o.store.put(this.#o.node, row));
    // Tracked at once: until the put is written nothing of this set can be restored, so numbers
    // used meanwhile can neither repeat nor be replayed after a crash.
    for (const x of sets) this.marks.track(x.set, x.row.key, x.row.marks, policy);
  }

  forget(impi: string): void {
    this.#enqueue(`registration ${impi}`, () => this.#o.store.remove(this.#o.node, impi));
  }

  /**
   * Writes what registration events queued, in order, in one transaction (group commit: under load
   * one commit carries many registrations). Runs once per event-loop turn, and before any mark write.
   */
  flush(): void {
    this.#flushQueued = false;
    if (this.#queue.length === 0) return;
    const ops = this.#queue.splice(0);
    const run = () => {
      for (const [what, op] of ops) {
        try {
          op();
        } catch (e) {
          this.#failed(what, e);
        }
      }
    };
    try {
      if (this.#o.store.batch) this.#o.store.batch(run);
      else run();
    } catch (e) {
      this.#failed('registrations', e);
    }
  }

  /** Writes what is queued, then the marks (exact inbound ones), and closes the store. */
  close(): void {
    this.flush();
    this.marks.close();
    this.#o.store.close();
  }

  readonly #queue: [string, () => void][] = [];
  #flushQueued = false;

  #enqueue(what: string, op: () => void): void {
    this.#queue.push([what, op]);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.flush());
  }

  #failed(what: string, e: unknown): void {
    this.#o.onError?.(what, e instanceof Error ? e : new Error(String(e)));
  }
}

/**
 * The SeqMarkWriter over a state store: synchronous writes when a packet needs one, write-behind
 * batched per event-loop turn otherwise, and a timer that tightens inbound marks of SAs that went
 * quiet (two generations: a mark written in one period and not in the next is tightened; the cost
 * follows the SAs that had traffic, never the number of registrations).
 */
export class MarkBatcher implements SeqMarkWriter {
  readonly #keys = new WeakMap<SeqMark, { setKey: string; sa: SaName }>();
  readonly #pending = new Map<SeqMark, number>();
  #recent = new Set<SeqMark>();
  #older = new Set<SeqMark>();
  #scheduled = false;
  readonly #timer: ReturnType<typeof setInterval>;
  /** Writes done (synchronous and batched statements): for tests and the bench. */
  writes = { now: 0, batches: 0 };

  constructor(
    private readonly store: Pick<PcscfStateStore, 'writeMarks'>,
    private readonly opts: { tightenMs?: number; onError?: (e: unknown) => void; before?: () => void } = {},
  ) {
    this.#timer = setInterval(() => this.tick(), opts.tightenMs ?? 2000);
    this.#timer.unref();
  }

  /** Puts each SA of `set` under a mark (durable values as just stored). */
  track(set: SaSet, setKey: string, durable: Readonly<Record<SaName, number>>, policy: SeqMarkPolicy): void {
    for (const name of SA_NAMES) {
      const sa = set.sas[name];
      if (sa.seqMark && this.#keys.get(sa.seqMark)?.setKey === setKey) continue;
      this.#keys.set(sa.trackSeq(this, durable[name], policy), { setKey, sa: name });
    }
  }

  writeNow(mark: SeqMark, value: number): void {
    const k = this.#keys.get(mark);
    if (!k) throw new Error('sequence-number mark of an SA this store does not track');
    this.opts.before?.();
    this.#pending.delete(mark);
    this.store.writeMarks([{ ...k, mark: value }]);
    this.writes.now++;
    if (mark.direction === 'in') {
      this.#recent.add(mark);
      this.#older.delete(mark);
    }
  }

  writeLater(mark: SeqMark, value: number): void {
    if (!this.#keys.has(mark)) return;
    this.#pending.set(mark, value);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes what is pending in one transaction, then confirms it to the marks. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending.size === 0) return;
    this.opts.before?.();
    const batch = [...this.#pending];
    this.#pending.clear();
    const rows: MarkWrite[] = batch.map(([m, v]) => ({ ...this.#keys.get(m)!, mark: v }));
    try {
      this.store.writeMarks(rows);
      this.writes.batches++;
    } catch (e) {
      this.opts.onError?.(e);
      return;
    }
    for (const [m, v] of batch) m.confirm(v);
  }

  /** Tightens the inbound marks written in the period before last and not since. */
  tick(): void {
    for (const m of this.#older) m.tighten();
    this.#older = this.#recent;
    this.#recent = new Set();
  }

  close(): void {
    clearInterval(this.#timer);
    // A clean stop leaves exact inbound marks: nothing fresh is refused after a planned restart.
    for (const m of [...this.#older, ...this.#recent]) m.tighten();
    this.flush();
  }
}
