// The unprotected sockets of a load run's UEs, reused (issue 9 §2: CPU per registration). A load UE
// binds its unprotected socket only while an initial registration runs (UeOptions.plainSocket
// 'on-demand'); binding and closing a UDP socket for every registration was ~7 % of the load
// process's CPU. A pool per local address lends a bound socket (ephemeral port) to a UE's
// registration and takes it back when the UE closes it: at most --concurrency sockets, all closed at
// the end of the run. A late datagram for a former borrower (a retransmitted 401) reaches the
// current one, whose transaction layer drops it as stray (RFC 3261 §18.1.2: no transaction has its
// branch); between loans datagrams are dropped. A fixed port (--local-port 5060) gets a socket of its own.
import type { Destination, ReceiveContext, ReceiveHandler, SipTransport } from '../sip/index.ts';
import { SipError } from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';

/** One pooled socket and whom it is lent to. */
class Pooled {
  loan: Loan | undefined;
  socket!: SipTransport;
  /** The socket's receive handler: to the borrower, as received on the loan. */
  readonly deliver = (bytes: Uint8Array, ctx: ReceiveContext): void => {
    const loan = this.loan;
    // Spelled out (a UDP socket's context has just these): a spread copies slower.
    if (loan) loan.onReceive(bytes, { protocol: ctx.protocol, local: ctx.local, remote: ctx.remote, transport: loan });
  };
}

/** A socket lent to one UE: close() gives it back to the pool. */
class Loan implements SipTransport {
  #p: Pooled | undefined;
  constructor(
    p: Pooled,
    readonly onReceive: ReceiveHandler,
    readonly pool: PlainSocketPool,
  ) {
    this.#p = p;
  }
  get protocol(): 'udp' {
    return 'udp';
  }
  get local(): SipTransport['local'] {
    return (this.#p?.socket ?? closedSocket).local;
  }
  send(bytes: Uint8Array, to: Destination): Promise<void> {
    const p = this.#p;
    if (!p) return Promise.reject(new SipError('SIP_TRANSPORT_CLOSED', 'this unprotected socket was given back'));
    return p.socket.send(bytes, to);
  }
  async close(): Promise<void> {
    const p = this.#p;
    if (!p) return;
    this.#p = undefined;
    p.loan = undefined;
    this.pool.giveBack(p);
  }
}

const closedSocket = { local: { address: '', port: 0 } };

/** Lends bound UDP sockets to UEs (UeOptions.openPlain); close() closes every one of them. */
export class PlainSocketPool {
  readonly #idle: Pooled[] = [];
  readonly #all: Pooled[] = [];
  #closed = false;

  /** Sockets bound so far (lent or idle). */
  get size(): number {
    return this.#all.length;
  }

  /** UeOptions.openPlain: a pooled socket for port 0, a socket of the UE's own for a fixed port. */
  readonly open = async (address: string, port: number, onReceive: ReceiveHandler): Promise<SipTransport> => {
    if (port !== 0 || this.#closed) return openUdpTransport({ address, port, onReceive });
    let p = this.#idle.pop();
    if (p && p.socket.local.address !== address) {
      this.#idle.push(p); // (one pool per address; a stranger's request is served apart)
      return openUdpTransport({ address, port, onReceive });
    }
    if (!p) {
      p = new Pooled();
      p.socket = await openUdpTransport({ address, port: 0, onReceive: p.deliver });
      this.#all.push(p);
    }
    const loan = new Loan(p, onReceive, this);
    p.loan = loan;
    return loan;
  };

  /** (Loan.close) */
  giveBack(p: Pooled): void {
    if (this.#closed) void p.socket.close();
    else this.#idle.push(p);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#idle.length = 0;
    await Promise.all(this.#all.map((p) => p.socket.close().catch(() => {})));
    this.#all.length = 0;
  }
}
