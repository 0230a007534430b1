// ESP sequence numbers that outlive the process (issue 13 §3). A restarted P-CSCF must never send a
// number twice on an SA (RFC 4303 §3.3.3) and must never accept a packet it accepted before the
// restart (§3.4.3). Writing every number would cost a store write per packet, so each SA keeps a
// high-water mark in the store, always ahead of (outbound) or at least at (inbound) what it used:
//
//   outbound: numbers ≤ mark may be sent. Past half the block a write-behind asks for the next block
//             (mark + block); only if traffic outruns that write is one written synchronously.
//             On restore the counter jumps to the mark: some numbers are skipped, none repeats.
//   inbound:  a packet that would move the window past the mark first makes mark ≥ its number
//             durable (synchronously; the block doubles from 1 while the SA is busy, so a quiet SA
//             costs one write per packet burst, a busy one a write per `maxInBlock`). After a quiet
//             spell the mark comes back down to the highest number received (write-behind). On
//             restore the window treats every number ≤ mark as received: nothing accepted before is
//             accepted again; a busy SA may lose up to one block of fresh packets (SIP retransmits).
//
// Pure: the writer (the P-CSCF's state store) owns the I/O and the timer that calls `tighten`.

/** Where marks are written. Both calls are keyed by the mark object (the writer knows its SA). */
export interface SeqMarkWriter {
  /** Durable before it returns; throws when the store cannot write (the packet is then refused). */
  writeNow(mark: SeqMark, value: number): void;
  /** Write-behind: the writer calls `mark.confirm(value)` once it is durable. */
  writeLater(mark: SeqMark, value: number): void;
}

/** Block sizes: outbound numbers reserved per write; the largest inbound block. */
export interface SeqMarkPolicy {
  readonly outBlock: number;
  readonly maxInBlock: number;
}

export const DEFAULT_SEQ_MARK_POLICY: SeqMarkPolicy = Object.freeze({ outBlock: 1024, maxInBlock: 64 });

const MAX_SEQ = 0xffffffff;

/** One SA's persisted high-water mark. Not safe for concurrent use (one event loop owns it). */
export class SeqMark {
  #durable: number;
  #asked: number;
  #inBlock = 1;

  constructor(
    readonly direction: 'in' | 'out',
    /** The mark already durable in the store. */
    durable: number,
    private readonly writer: SeqMarkWriter,
    /** What the SA has really used: the last number sent (out) or the highest received (in). */
    private readonly used: () => number,
    private readonly policy: SeqMarkPolicy = DEFAULT_SEQ_MARK_POLICY,
  ) {
    this.#durable = durable;
    this.#asked = durable;
  }

  /** The highest number the store covers. */
  get durable(): number {
    return this.#durable;
  }

  /**
   * Outbound: before `seq` is sealed. Inbound: before an authenticated `seq` moves the window past
   * its highest number. False when the store could not cover `seq` (nothing may be sent/accepted).
   */
  admit(seq: number): boolean {
    if (this.direction === 'out') {
      const b = this.policy.outBlock;
      if (seq <= this.#durable) {
        if (seq > this.#durable - b / 2 && this.#asked <= this.#durable && this.#durable < MAX_SEQ) {
          this.#asked = Math.min(MAX_SEQ, this.#durable + b);
          this.writer.writeLater(this, this.#asked);
        }
        return true;
      }
      return this.#now(Math.min(MAX_SEQ, Math.max(this.#asked, seq + b - 1)));
    }
    if (seq <= this.#durable) return true;
    const ok = this.#now(Math.min(MAX_SEQ, seq + this.#inBlock - 1));
    if (ok) this.#inBlock = Math.min(this.policy.maxInBlock, this.#inBlock * 2);
    return ok;
  }

  /** The writer made `value` durable (write-behind). A lower value (a tightening) never raises it. */
  confirm(value: number): void {
    if (value > this.#durable && value <= this.#asked) this.#durable = value;
  }

  /**
   * Inbound, after a quiet spell: the mark comes down to what was really received, so a restart
   * refuses nothing fresh. Lowered in memory first (the next packet past it writes again), then
   * written behind; a crash before that write leaves the higher, still safe, mark.
   */
  tighten(): void {
    if (this.direction !== 'in') return;
    const h = this.used();
    this.#inBlock = 1;
    if (h >= this.#durable) return;
    this.#durable = this.#asked = h;
    this.writer.writeLater(this, h);
  }

  #now(value: number): boolean {
    try {
      this.writer.writeNow(this, value);
    } catch {
      return false;
    }
    this.#durable = this.#asked = value;
    return true;
  }
}
