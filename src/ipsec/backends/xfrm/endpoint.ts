// A protected SIP endpoint of the xfrm backend: an ordinary UDP socket on the protected port. The
// kernel applies ESP (outbound policy → SA) and enforces it (inbound policy); we only attach the SA
// set a message came over, found from (remote address, remote port, local port), spec digest §6.2.
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Sa } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import type { Addr, ProtectedContext, ProtectedEndpoint, ProtectedHandler } from '../backend.ts';
import { guard } from '../../../util/guard.ts';
import { BackendError } from '../errors.ts';

/** What endpoints and TCP transports need from the backend. */
export interface ProtectedLookup {
  /** The set and SA a message from `remote` to `local` arrived on; undefined = unprotected. */
  contextFor(local: Addr, remote: Addr): ProtectedContext | undefined;
  /**
   * Chooses the set for a send (given or best) and points its kernel policy at it; throws
   * BACKEND_NO_SA. `dst` is where the datagram must go: the SA's inner destination, so that the
   * kernel's policy selector matches (a UE addressed by its public address behind a NAT would
   * otherwise leave in clear text, outside every policy).
   */
  prepareSend(local: Addr, to: Addr, set?: SaSet): { set: SaSet; sa: Sa; dst: string };
  countUnprotected(): void;
}

export class XfrmUdpEndpoint implements ProtectedEndpoint {
  readonly #handlers: ProtectedHandler[] = [];
  readonly #onClose: (() => void)[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    private readonly lookup: ProtectedLookup,
    readonly local: Addr,
    private readonly socket: Socket,
  ) {
    socket.on(
      'message',
      guard(
        'xfrm.udp',
        (msg: Buffer, rinfo: { address: string; port: number }) => {
          const ctx = lookup.contextFor(local, { address: rinfo.address, port: rinfo.port });
          if (!ctx) {
            lookup.countUnprotected();
            return;
          }
          const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
          for (const h of this.#handlers) h(bytes, ctx);
        },
        (msg) => msg.length,
      ),
    );
    // ICMP errors for earlier sends (port unreachable, …) surface here; a send reports its own.
    socket.on('error', () => {});
  }

  static async open(lookup: ProtectedLookup, local: Addr): Promise<XfrmUdpEndpoint> {
    const s = createSocket({ type: isIP(local.address) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new BackendError('BACKEND_BIND_FAILED', `cannot bind protected UDP port ${local.address}:${local.port}: ${e.code ?? e.message}`),
        ),
      );
      s.bind(local.port, local.address, () => resolve());
    });
    s.removeAllListeners('error');
    return new XfrmUdpEndpoint(lookup, { address: local.address, port: s.address().port }, s);
  }

  /**
   * Points the port pair's outbound policy at the chosen set's SA, then sends. Sends are serialized
   * per endpoint so that a send pinned to one set cannot leave under another set's template.
   */
  send(bytes: Uint8Array, to: Addr, opts: { set?: SaSet } = {}): Promise<SaSet> {
    const run = this.#chain.then(async () => {
      if (this.#closed) throw new BackendError('BACKEND_SEND_FAILED', `endpoint ${this.local.address}:${this.local.port} is closed`);
      const { set, dst } = this.lookup.prepareSend(this.local, to, opts.set);
      await new Promise<void>((resolve, reject) =>
        this.socket.send(bytes, to.port, dst, (err) =>
          err
            ? reject(
                new BackendError(
                  'BACKEND_SEND_FAILED',
                  `send to ${to.address}:${to.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
                ),
              )
            : resolve(),
        ),
      );
      return set;
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  onMessage(handler: ProtectedHandler): void {
    handler = guard('xfrm.deliver', handler, (b) => b.length);
    this.#handlers.push(handler);
  }

  onClose(f: () => void): void {
    this.#onClose.push(f);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.length = 0;
    this.socket.close();
    for (const f of this.#onClose) f();
  }
}
