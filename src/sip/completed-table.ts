// Non-INVITE transactions in Completed, compact (RFC 3261 §17.1.2.2 Timer K, §17.2.2 Timer J). There a
// machine only absorbs retransmissions: a server transaction resends its final response for every
// retransmitted request until Timer J (64·T1, 32 s over UDP), a client transaction swallows
// retransmitted finals until Timer K (T4, 5 s). At a burst of registrations that is tens of thousands
// of transactions per process, each a full object promoted to old space and then dead (GC work and a
// fragmented old space). So the layer keeps, per completed transaction, one small record: its key, its
// due time and, for a server transaction, where the final response's bytes sit in a shared slab and
// where they go. The transaction object is referenced only when its TU asked to hear of its end
// (onTerminated/onStateChange), as the `owner` to tell.
//
// One table per delay (Timer J is a constant per layer, so is K): due times grow in insertion order,
// and a FIFO of records is the expiry order. One clock timer for the whole table, armed for the oldest
// record; a lookup drops the expired records first (amortised O(1)), so a record is never found after
// its due time even when the clock timer is late. At `cap` records an insert ends the oldest record
// early (counted in `evictions`): its transaction is over before its timer, so a later retransmission of
// its request is a new request to the TU (server) or a stray response (client).
import type { Clock } from './clock.ts';
import type { Destination, SendFailureSink, SipTransport } from './transport.ts';
import { containFault } from '../util/guard.ts';

/** The transaction a record stands for, when its TU wants to hear of its end. */
export interface CompletedOwner extends SendFailureSink {
  /** Timer J/K fired, the table evicted the record at its cap, or the layer closed. */
  onCompletedEnd(): void;
}

/** One completed transaction: what absorbing a retransmission needs (a client transaction: the key alone). */
export class CompletedRecord {
  constructor(
    readonly key: string,
    /** Whole milliseconds on the table's clock. */
    readonly due: number,
    /** Cleared when the record leaves the table (whatever the reason). */
    public owner: CompletedOwner | undefined,
  ) {}
}

/** A completed server transaction: its final response, `len` octets at `at` in `slab` (shared with other records), and where it goes. */
export class CompletedResponse extends CompletedRecord {
  constructor(
    key: string,
    due: number,
    owner: CompletedOwner | undefined,
    readonly slab: Uint8Array,
    readonly at: number,
    readonly len: number,
    readonly to: Destination,
    readonly transport: SipTransport,
  ) {
    super(key, due, owner);
  }

  /** The final response's octets (a view: resent as is). */
  get bytes(): Uint8Array {
    return this.slab.subarray(this.at, this.at + this.len);
  }
}

/** Options of `CompletedTable`. */
export interface CompletedTableOptions {
  /** How long a record lives (Timer J or K, ms, > 0). */
  readonly delayMs: number;
  /** At most this many records; an insert beyond ends the oldest early. */
  readonly cap: number;
}

// Copies of final responses, in slabs shared only by records of this table: they die first in, first
// out, so a slab is freed once its last record is gone and the packing stays dense.
const SLAB = 64 * 1024;

/** Completed transactions by key with FIFO expiry (see the file header). Not safe across threads. */
export class CompletedTable {
  readonly #byKey = new Map<string, CompletedRecord>();
  /** Records in due order from `#head`; removed ones stay until they reach the head. */
  #fifo: CompletedRecord[] = [];
  #head = 0;
  #cancelTimer: (() => void) | undefined;
  #slab = new Uint8Array(0);
  #used = 0;
  /** Records ended before their due time because the table was full. */
  evictions = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: CompletedTableOptions,
  ) {}

  /** Live records (expired ones dropped first). */
  get size(): number {
    this.expire(this.clock.now());
    return this.#byKey.size;
  }

  /**
   * Files a completed transaction under `key` until `delayMs` from now. `bytes`/`to`/`transport`: the
   * final response to resend (server); absent for a client transaction. The key must not be filed.
   */
  add(
    key: string,
    bytes: Uint8Array | undefined,
    to: Destination | undefined,
    transport: SipTransport | undefined,
    owner: CompletedOwner | undefined,
  ): CompletedRecord {
    const now = this.clock.now();
    this.expire(now);
    const evicted = this.#byKey.size >= this.options.cap ? this.evictOldest() : undefined;
    const due = Math.ceil(now + this.options.delayMs);
    let r: CompletedRecord;
    if (bytes === undefined || to === undefined || transport === undefined) {
      r = new CompletedRecord(key, due, owner);
    } else {
      const len = bytes.length;
      let slab: Uint8Array;
      let at = 0;
      if (len > SLAB / 4) {
        slab = bytes.slice();
      } else {
        if (this.#used + len > this.#slab.length) {
          this.#slab = new Uint8Array(SLAB);
          this.#used = 0;
        }
        slab = this.#slab;
        at = this.#used;
        slab.set(bytes, at);
        this.#used = (at + len + 7) & ~7;
      }
      r = new CompletedResponse(key, due, owner, slab, at, len, to, transport);
    }
    this.#byKey.set(key, r);
    this.#fifo.push(r);
    if (this.#cancelTimer === undefined) this.arm(now);
    if (evicted !== undefined) tell(evicted); // once the table is consistent (the owner may add again)
    return r;
  }

  /** The live record filed under `key`, if any. */
  find(key: string): CompletedRecord | undefined {
    if (this.#byKey.size === 0) return undefined;
    this.expire(this.clock.now());
    return this.#byKey.get(key);
  }

  /** Whether `r` is still filed and not yet due. */
  isLive(r: CompletedRecord): boolean {
    return this.#byKey.get(r.key) === r && r.due > this.clock.now();
  }

  /** Resends a record's final response; a failed send removes the record and tells its owner (§17.2.4). */
  resend(r: CompletedRecord): void {
    if (!(r instanceof CompletedResponse)) return;
    const bytes = r.bytes;
    const t = r.transport;
    const sink = new ResendFailure(this, r);
    if (t.post !== undefined) return t.post(bytes, r.to, sink);
    let p: Promise<void>;
    try {
      p = t.send(bytes, r.to);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.catch((e: unknown) => sink.sendFailed(e instanceof Error ? e : new Error(String(e))));
  }

  /** Takes `r` out without telling its owner (the owner ended itself). */
  remove(r: CompletedRecord): void {
    r.owner = undefined;
    if (this.#byKey.get(r.key) === r) this.#byKey.delete(r.key);
    if (this.#byKey.size === 0) this.reset();
  }

  /** Ends every record, telling the owners (the layer closes). */
  clear(): void {
    const owners: CompletedOwner[] = [];
    for (const r of this.#byKey.values()) if (r.owner !== undefined) owners.push(r.owner);
    this.#byKey.clear();
    this.reset();
    for (const o of owners) tell(o);
  }

  /** Ends the oldest live record; returns its owner to tell (the caller does, once consistent). */
  private evictOldest(): CompletedOwner | undefined {
    const fifo = this.#fifo;
    while (this.#head < fifo.length) {
      const r = fifo[this.#head]!;
      fifo[this.#head++] = undefined as unknown as CompletedRecord;
      if (this.#byKey.get(r.key) !== r) continue;
      this.evictions++;
      return this.end(r);
    }
    return undefined;
  }

  /**
   * Drops every record due at `now` (they are at the head: due times grow along the FIFO). Owners are
   * told after the loop: what they do then (end, add, remove) finds the table consistent.
   */
  private expire(now: number): void {
    const fifo = this.#fifo;
    let owners: CompletedOwner[] | undefined;
    while (this.#head < fifo.length) {
      const r = fifo[this.#head]!;
      if (r.due > now) break;
      fifo[this.#head++] = undefined as unknown as CompletedRecord; // no hold on a dead record
      if (this.#byKey.get(r.key) !== r) continue;
      const o = this.end(r);
      if (o !== undefined) (owners ??= []).push(o);
    }
    if (this.#byKey.size === 0) {
      if (fifo.length > 0) this.reset();
    } else if (this.#head > 1024 && this.#head * 2 > fifo.length) {
      // Drop the consumed prefix now and then (amortised O(1) per record).
      this.#fifo = fifo.slice(this.#head);
      this.#head = 0;
    }
    if (owners !== undefined) for (const o of owners) tell(o);
  }

  /** Unfiles `r`; returns its owner, to be told. */
  private end(r: CompletedRecord): CompletedOwner | undefined {
    this.#byKey.delete(r.key);
    const o = r.owner;
    r.owner = undefined;
    return o;
  }

  private arm(now: number): void {
    const first = this.#fifo[this.#head];
    if (first === undefined) return;
    this.#cancelTimer = this.clock.setTimer(first.due - now, () => this.fire());
  }

  private fire(): void {
    this.#cancelTimer = undefined;
    const now = this.clock.now();
    this.expire(now);
    if (this.#cancelTimer === undefined) this.arm(now);
  }

  private reset(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#fifo = [];
    this.#head = 0;
  }
}

/** One owner's bug does not stop the other records' expiry. */
function tell(o: CompletedOwner): void {
  try {
    o.onCompletedEnd();
  } catch (e) {
    containFault('sip.timer', e);
  }
}

/** The sink of one retransmitted final response (retransmissions are rare: an object each is fine). */
class ResendFailure implements SendFailureSink {
  constructor(
    private readonly table: CompletedTable,
    private readonly record: CompletedRecord,
  ) {}

  sendFailed(error: Error): void {
    const owner = this.record.owner;
    if (!this.table.isLive(this.record)) return;
    this.table.remove(this.record);
    owner?.sendFailed(error);
  }
}
