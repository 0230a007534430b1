// An in-memory network of SIP transports for tests and simulations: bind endpoints, send bytes between
// them with asynchronous (microtask) delivery, log every packet, drop packets on demand. 'udp' loses
// packets sent to nobody; 'tcp' rejects them, as a refused connection would.
import { SipError } from './errors.ts';
import {
  endpointKey,
  type Destination,
  type Endpoint,
  type ReceiveHandler,
  type SipTransport,
  type TransportProtocol,
} from './transport.ts';

/** One packet on the in-memory network, as its log and filter see it. */
export interface MemoryPacket {
  readonly protocol: TransportProtocol;
  readonly from: Endpoint;
  readonly to: Destination;
  readonly bytes: Uint8Array;
  /** False when the filter dropped it or nobody was bound at the destination. */
  delivered: boolean;
}

/** Options of `MemoryNetwork.bind`. */
export interface MemoryBindOptions {
  readonly address: string;
  /** 0 or absent: the next free port from 40000 up. */
  readonly port?: number;
  readonly protocol?: TransportProtocol;
  readonly onReceive: ReceiveHandler;
  /** Tag put in the `via` of every receive context (simulates the SA set of a protected port). */
  readonly via?: unknown;
}

/** A transport bound on the in-memory network, with the packets it sent. */
export interface MemoryTransport extends SipTransport {
  /** Packets this transport sent. */
  readonly sent: MemoryPacket[];
}

/** An in-memory network of SIP transports for tests in virtual time: delivers asynchronously (a microtask), logs every packet, can drop (loss injection). */
export class MemoryNetwork {
  /** Every packet sent on the network, in order. */
  readonly log: MemoryPacket[] = [];
  /** Return false to drop a packet (loss injection). */
  filter: ((packet: MemoryPacket) => boolean) | undefined;
  private readonly bound = new Map<string, { transport: MemoryTransport; options: MemoryBindOptions }>();
  private nextPort = 40000;

  bind(options: MemoryBindOptions): MemoryTransport {
    const protocol = options.protocol ?? 'udp';
    let port = options.port ?? 0;
    if (port === 0) {
      do port = this.nextPort++;
      while (this.bound.has(this.key(protocol, { address: options.address, port })));
    }
    const local: Endpoint = { address: options.address, port };
    const key = this.key(protocol, local);
    if (this.bound.has(key)) throw new SipError('SIP_INVALID_ARGUMENT', `${protocol} ${endpointKey(local)} is already bound`);
    let closed = false;
    const sent: MemoryPacket[] = [];
    const transport = {
      protocol,
      local,
      sent,
      send: (bytes: Uint8Array, to: Destination): Promise<void> => {
        if (closed) return Promise.reject(new SipError('SIP_TRANSPORT_CLOSED', `${protocol} ${endpointKey(local)} is closed`));
        const packet: MemoryPacket = { protocol, from: local, to, bytes: bytes.slice(), delivered: false };
        sent.push(packet);
        this.log.push(packet);
        const peer = this.bound.get(this.key(protocol, to));
        if (!peer && protocol === 'tcp') {
          return Promise.reject(new SipError('SIP_UNREACHABLE', `no tcp listener at ${endpointKey(to)}`));
        }
        if (!peer || (this.filter && !this.filter(packet))) return Promise.resolve();
        packet.delivered = true;
        const connectionId = protocol === 'tcp' ? `mem:${[endpointKey(local), endpointKey(to)].sort().join('-')}` : undefined;
        queueMicrotask(() =>
          peer.options.onReceive(packet.bytes, {
            protocol,
            local: peer.transport.local,
            remote: local,
            transport: peer.transport,
            ...(connectionId !== undefined && { connectionId }),
            ...(peer.options.via !== undefined && { via: peer.options.via }),
          }),
        );
        return Promise.resolve();
      },
      close: (): Promise<void> => {
        closed = true;
        this.bound.delete(key);
        return Promise.resolve();
      },
    } satisfies MemoryTransport;
    this.bound.set(key, { transport, options });
    return transport;
  }

  /** Resolves once every delivery queued so far (and any they cause in the same turn) has run. */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  private key(protocol: TransportProtocol, e: Endpoint): string {
    return `${protocol} ${endpointKey(e)}`;
  }
}
