// One NETLINK_XFRM socket (netlink(7)): request → read every answer up to its ACK or error;
// dumps up to NLMSG_DONE; GET → one record. Synchronous (the kernel answers at once). Request
// buffers, which may hold keys, are zeroed after sending; received buffers after parsing.
import { XfrmError, errnoName } from './errors.ts';
import { loadNative, sys, type ImsecNative } from './native.ts';
import {
  NETLINK_XFRM,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_DUMP_INTR,
  decodeError,
  decodeMessages,
  type NlError,
  type NlMessage,
} from './netlink.ts';

/** What the backend needs from netlink (a test can pass a fake). */
export interface XfrmTransport {
  nextSeq(): number;
  /** Sends a request built with NLM_F_ACK; resolves on the ACK, throws XFRM_KERNEL on an error. */
  request(msg: Uint8Array, step: string): void;
  /**
   * Sends a GET and parses the one answer (then zeroes it: GETSA answers hold keys); undefined
   * when the kernel answers with one of the `absent` errnos (default ESRCH, ENOENT).
   */
  get<T>(msg: Uint8Array, step: string, parse: (payload: Uint8Array) => T | undefined, absent?: readonly number[]): T | undefined;
  /** Sends a dump request and parses every record (records that do not parse are skipped). */
  dump<T>(msg: Uint8Array, step: string, parse: (payload: Uint8Array) => T | undefined): T[];
  /** Multicast messages received without asking (group subscriptions), non-blocking. */
  poll(): NlMessage[];
  close(): void;
}

export const ESRCH = 3;
export const ENOENT = 2;
export const EEXIST = 17;

export function kernelError(step: string, e: NlError): XfrmError {
  const why = e.message ? `: ${e.message}` : '';
  return new XfrmError('XFRM_KERNEL', `${step}: ${errnoName(e.errno)}${why}`, e.errno);
}

export class XfrmNetlink implements XfrmTransport {
  readonly #native: ImsecNative;
  #fd: number | undefined;
  #seq: number;
  readonly #timeoutMs: number;
  /** Unsolicited messages seen while waiting for an answer (multicast sockets). */
  readonly #pending: NlMessage[] = [];

  /** Opens a NETLINK_XFRM socket; `groups` subscribes to multicast groups (bitmask). Needs CAP_NET_ADMIN for changes. */
  constructor(opts: { groups?: number; timeoutMs?: number; native?: ImsecNative } = {}) {
    this.#native = opts.native ?? loadNative();
    this.#fd = sys('netlink socket (NETLINK_XFRM)', () => this.#native.netlinkOpen(NETLINK_XFRM, opts.groups ?? 0));
    this.#seq = (Date.now() & 0x7fffffff) >>> 0;
    this.#timeoutMs = opts.timeoutMs ?? 3000;
  }

  nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    return this.#seq;
  }

  #send(msg: Uint8Array, step: string): number {
    const fd = this.#open(step);
    const seq = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(8, true);
    try {
      sys(`${step}: send`, () => this.#native.netlinkSend(fd, msg));
    } finally {
      msg.fill(0);
    }
    return seq;
  }

  #open(step: string): number {
    if (this.#fd === undefined) throw new XfrmError('XFRM_SYSCALL', `${step}: the netlink socket is closed`);
    return this.#fd;
  }

  /** Reads datagrams until `done` says so for a message with our seq. */
  #read(seq: number, step: string, onMsg: (m: NlMessage) => boolean): void {
    const fd = this.#open(step);
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new XfrmError('XFRM_TIMEOUT', `${step}: no answer from the kernel within ${this.#timeoutMs} ms`);
      const buf = sys(`${step}: recv`, () => this.#native.netlinkRecv(fd, left));
      if (!buf) continue;
      const msgs = decodeMessages(buf);
      if (!msgs) throw new XfrmError('XFRM_BAD_REPLY', `${step}: a netlink answer with impossible lengths (${buf.length} octets)`);
      let finished = false;
      for (const m of msgs) {
        if (m.seq !== seq) {
          // seq 0: a multicast notification (mapping, expire) that arrived meanwhile.
          if (m.seq === 0) this.#pending.push(copy(m));
          continue;
        }
        if (m.type === NLMSG_NOOP) continue;
        if (m.type === NLMSG_OVERRUN) throw new XfrmError('XFRM_BAD_REPLY', `${step}: netlink overrun`);
        if (onMsg(m)) finished = true;
      }
      if (finished) return;
    }
  }

  request(msg: Uint8Array, step: string): void {
    const seq = this.#send(msg, step);
    let err: NlError | undefined;
    this.#read(seq, step, (m) => {
      if (m.type !== NLMSG_ERROR) return false;
      err = decodeError(m);
      if (!err) throw new XfrmError('XFRM_BAD_REPLY', `${step}: malformed netlink error message`);
      return true;
    });
    if (err && err.errno !== 0) throw kernelError(step, err);
  }

  get<T>(
    msg: Uint8Array,
    step: string,
    parse: (payload: Uint8Array) => T | undefined,
    absent: readonly number[] = [ESRCH, ENOENT],
  ): T | undefined {
    const seq = this.#send(msg, step);
    let out: T | undefined;
    let err: NlError | undefined;
    this.#read(seq, step, (m) => {
      if (m.type === NLMSG_ERROR) {
        err = decodeError(m);
        if (!err) throw new XfrmError('XFRM_BAD_REPLY', `${step}: malformed netlink error message`);
        return true;
      }
      out = parse(m.payload);
      m.payload.fill(0);
      if (out === undefined)
        throw new XfrmError('XFRM_BAD_REPLY', `${step}: an answer that does not parse (type ${m.type}, ${m.payload.length} octets)`);
      return true;
    });
    if (err && err.errno !== 0) {
      if (absent.includes(err.errno)) return undefined;
      throw kernelError(step, err);
    }
    return out;
  }

  dump<T>(msg: Uint8Array, step: string, parse: (payload: Uint8Array) => T | undefined): T[] {
    for (let attempt = 0; ; attempt++) {
      const out: T[] = [];
      const again = new Uint8Array(msg);
      const seq = this.#send(msg, step);
      let interrupted = false;
      let err: NlError | undefined;
      this.#read(seq, step, (m) => {
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_DONE) return true;
        if (m.type === NLMSG_ERROR) {
          err = decodeError(m);
          return true;
        }
        const r = parse(m.payload);
        m.payload.fill(0);
        if (r !== undefined) out.push(r);
        return false;
      });
      if (err && err.errno !== 0) throw kernelError(step, err);
      // NLM_F_DUMP_INTR: the table changed during the dump; the kernel asks us to dump again.
      if (!interrupted || attempt >= 3) return out;
      msg = again;
    }
  }

  poll(): NlMessage[] {
    const out = this.#pending.splice(0);
    if (this.#fd === undefined) return out;
    for (;;) {
      const buf = sys('netlink poll', () => this.#native.netlinkRecv(this.#fd!, 0));
      if (!buf) return out;
      for (const m of decodeMessages(buf) ?? []) out.push(copy(m));
      buf.fill(0);
    }
  }

  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) this.#native.close(fd);
  }
}

/** A copy that owns its bytes (Buffer#slice would share them with the datagram we zero). */
function copy(m: NlMessage): NlMessage {
  return { ...m, payload: new Uint8Array(m.payload) };
}
