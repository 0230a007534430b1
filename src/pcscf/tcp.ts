// SIP over TCP through the SAs at the P-CSCF (spec digest §6.2), with a backend whose SAs carry any
// protocol (xfrm): a server transport on port_ps (UE requests over SA1, our responses on that
// connection over SA3) and a client one from port_pc (our requests over SA2, the UE's answers on
// that connection over SA4). Our rule: a UE is reached over TCP once a protected message of its SA
// set arrived over TCP; responses always follow the request's own connection (RFC 3261 §18.2.2).
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import { protectedContextOf } from '../ipsec/backends/sip-endpoint.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import type { Route } from '../sip/response-routing.ts';
import type { ReceiveContext, ReceiveHandler, SipTransport } from '../sip/transport.ts';

export class PcscfTcp {
  readonly #sets = new WeakSet<SaSet>();
  #client!: SipTransport;
  #server!: SipTransport;

  private constructor() {}

  /** Undefined when the backend carries UDP only (the userspace backend). */
  static async open(
    backend: IpsecBackend,
    address: string,
    portC: number,
    portS: number,
    onReceive: ReceiveHandler,
  ): Promise<PcscfTcp | undefined> {
    if (!backend.openTcp) return undefined;
    const t = new PcscfTcp();
    const receive: ReceiveHandler = (bytes, ctx) => {
      const p = protectedContextOf(ctx);
      if (p) t.#sets.add(p.set);
      onReceive(bytes, ctx);
    };
    t.#server = await backend.openTcp({ local: { address, port: portS }, role: 'server', onReceive: receive, onError: () => {} });
    try {
      t.#client = await backend.openTcp({ local: { address, port: portC }, role: 'client', onReceive: receive, onError: () => {} });
    } catch (e) {
      await t.#server.close();
      throw e;
    }
    return t;
  }

  /** Whether a protected message of `set` came over TCP (then our requests to that UE go over TCP). */
  speaksTcp(set: SaSet): boolean {
    return this.#sets.has(set);
  }

  /**
   * The TCP route to the UE of `set`: for a response (`answering` = the request's context) the
   * connection the request came on, if it came over TCP; for a request a connection from port_pc
   * to port_us when the set speaks TCP. Undefined: use UDP.
   */
  route(set: SaSet, answering?: ReceiveContext): Route | undefined {
    if (answering) {
      if (answering.protocol !== 'tcp' || !protectedContextOf(answering)) return undefined;
      const id = answering.connectionId;
      return { transport: answering.transport, to: { ...answering.remote, ...(id !== undefined && { connectionId: id }) } };
    }
    return this.#sets.has(set) ? { transport: this.#client, to: { address: set.config.ue.ip, port: set.config.ue.portS } } : undefined;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#client.close(), this.#server.close()]);
  }
}
