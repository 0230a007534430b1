// SIP over UDP (RFC 3261 §18) on node:dgram: one socket bound to an address and port (0 = ephemeral,
// the bound port is reported), IPv4 or IPv6 by the address. Each datagram goes up as is; parsing and
// the malformed-input report belong to the transaction layer.
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { containFault } from '../util/guard.ts';
import { SipError } from './errors.ts';
import { endpointKey, type Destination, type Endpoint, type ReceiveHandler, type SendFailureSink, type SipTransport } from './transport.ts';

export interface UdpTransportOptions {
  /** Local address to bind, e.g. "127.0.0.1", "::1", "0.0.0.0". */
  readonly address: string;
  /** 0 or absent: an ephemeral port. */
  readonly port?: number;
  readonly onReceive: ReceiveHandler;
  /** Socket errors after binding (the socket stays open where node allows). */
  readonly onError?: (error: Error) => void;
  /** Tag for the `via` of every receive context. */
  readonly via?: unknown;
}

export interface UdpTransport extends SipTransport {
  readonly protocol: 'udp';
}

export const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * node:dgram resolves every destination of send() through dns.lookup, which answers an IP literal on
 * the next tick; SIP here nearly always sends to literals (Via received/rport, a configured next hop),
 * so a literal is answered at once and only a name goes to the resolver.
 */
export function literalFirstLookup(address: string, options: number | LookupOneOptions, callback: LookupCallback): void {
  const family = isIP(address);
  if (family !== 0) return callback(null, address, family);
  dnsLookup(address, typeof options === 'number' ? { family: options } : options, callback);
}

/**
 * The sinks of the sends in flight on one socket, oldest first, and the one callback they all pass
 * to node:dgram. node:dgram completes a socket's sends in order for IP literals (a synchronous send
 * answers on the next tick; once one waits in libuv's queue, every later one queues behind it), so
 * the callback's n-th call is the n-th send's. Errors carry their destination for the report.
 */
export class PostQueue {
  #sinks: (SendFailureSink | undefined)[] = [];
  #head = 0;
  readonly callback: (err: Error | null) => void;

  constructor(orphan: (err: Error) => void) {
    this.callback = (err) => {
      const sinks = this.#sinks;
      const sink = sinks[this.#head];
      sinks[this.#head++] = undefined;
      if (this.#head === sinks.length) {
        sinks.length = 0;
        this.#head = 0;
      } else if (this.#head > 4096) {
        sinks.splice(0, this.#head);
        this.#head = 0;
      }
      if (!err) return;
      const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
      const failure = new SipError('SIP_TRANSPORT_FAILED', `udp send to ${e.address ?? '?'}:${e.port ?? '?'}: ${e.message}`);
      if (sink) sink.sendFailed(failure);
      else orphan(failure);
    };
  }

  push(sink: SendFailureSink): void {
    this.#sinks.push(sink);
  }
}

export async function openUdpTransport(options: UdpTransportOptions): Promise<UdpTransport> {
  // A large receive buffer: a process that stalls for a moment (GC, a busy machine) under a burst
  // of registrations would otherwise lose datagrams and pay Timer E retransmissions (the kernel
  // caps it at net.core.rmem_max; memory is only used by what is queued).
  const socket: Socket = createSocket({
    type: isIPv6(options.address) ? 'udp6' : 'udp4',
    recvBufferSize: RECV_BUFFER_BYTES,
    lookup: literalFirstLookup as never,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: options.address, port: options.port ?? 0, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const addr = socket.address();
  const local: Endpoint = { address: addr.address, port: addr.port };
  let closed = false;
  const posts = new PostQueue((err) => options.onError?.(err));

  const transport: UdpTransport = {
    protocol: 'udp',
    local,
    send(bytes: Uint8Array, to: Destination): Promise<void> {
      if (closed) return Promise.reject(new SipError('SIP_TRANSPORT_CLOSED', `udp ${endpointKey(local)} is closed`));
      return new Promise((resolve, reject) => {
        socket.send(bytes, to.port, to.address, (err) =>
          err ? reject(new SipError('SIP_TRANSPORT_FAILED', `udp send to ${endpointKey(to)}: ${err.message}`)) : resolve(),
        );
      });
    },
    post(bytes: Uint8Array, to: Destination, sink: SendFailureSink): void {
      if (closed) return sink.sendFailed(new SipError('SIP_TRANSPORT_CLOSED', `udp ${endpointKey(local)} is closed`));
      // A name goes through the resolver, whose answer can overtake other sends: its own callback.
      if (isIP(to.address) === 0) {
        this.send(bytes, to).catch((e: Error) => sink.sendFailed(e));
        return;
      }
      try {
        socket.send(bytes, to.port, to.address, posts.callback);
      } catch (e) {
        // Thrown before anything was queued (a bad port, a closed socket): no callback will come.
        return sink.sendFailed(new SipError('SIP_TRANSPORT_FAILED', `udp send to ${endpointKey(to)}: ${(e as Error).message}`));
      }
      posts.push(sink);
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };

  // The boundary: whatever the layers above throw on this datagram stays here (issue 10 §4). Written
  // out (guard's work) with the context as one of two literals: no rest-arguments array and no spread
  // of a conditional object per datagram.
  const via = options.via;
  socket.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => {
    try {
      const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
      const remote = { address: rinfo.address, port: rinfo.port };
      const r: unknown = options.onReceive(
        bytes,
        via === undefined ? { protocol: 'udp', local, remote, transport } : { protocol: 'udp', local, remote, transport, via },
      );
      // An async handler's rejection is contained like a throw (as guard does).
      if (r instanceof Promise) r.catch((e: unknown) => containFault('sip.udp', e, msg.length));
    } catch (e) {
      containFault('sip.udp', e, msg.length);
    }
  });
  socket.on('error', (err) => options.onError?.(err));
  return transport;
}
