// SIP over UDP (RFC 3261 §18) on node:dgram: one socket bound to an address and port (0 = ephemeral,
// the bound port is reported), IPv4 or IPv6 by the address. Each datagram goes up as is; parsing and
// the malformed-input report belong to the transaction layer.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { guard } from '../util/guard.ts';
import { SipError } from './errors.ts';
import { endpointKey, type Destination, type Endpoint, type ReceiveHandler, type SipTransport } from './transport.ts';

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

export async function openUdpTransport(options: UdpTransportOptions): Promise<UdpTransport> {
  // A large receive buffer: a process that stalls for a moment (GC, a busy machine) under a burst
  // of registrations would otherwise lose datagrams and pay Timer E retransmissions (the kernel
  // caps it at net.core.rmem_max; memory is only used by what is queued).
  const socket: Socket = createSocket({ type: isIPv6(options.address) ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
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
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };

  // The boundary: whatever the layers above throw on this datagram stays here (issue 10 §4).
  socket.on(
    'message',
    guard(
      'sip.udp',
      (msg: Buffer, rinfo: { address: string; port: number }) => {
        options.onReceive(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), {
          protocol: 'udp',
          local,
          remote: { address: rinfo.address, port: rinfo.port },
          transport,
          ...(options.via !== undefined && { via: options.via }),
        });
      },
      (msg) => msg.length,
    ),
  );
  socket.on('error', (err) => options.onError?.(err));
  return transport;
}
