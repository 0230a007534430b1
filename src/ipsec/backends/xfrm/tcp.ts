// SIP over TCP (RFC 3261 §18) on the protected ports, through the kernel SAs (spec digest §6.2):
// a `server` transport listens on port_us / port_ps and answers on the accepted connections (SA3
// / SA4); a `client` transport connects *from* port_uc / port_pc (SA1 / SA2). Every framed message
// is delivered with the SA set it came over; a connection that matches no SA set is closed.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { StreamFramer } from '../../../sip/stream-framer.ts';
import type { Destination, Endpoint, ReceiveContext, ReceiveHandler, SipTransport } from '../../../sip/transport.ts';
import { canonicalAddress } from '../../sa.ts';
import type { Addr } from '../backend.ts';
import { BackendError } from '../errors.ts';
import type { ProtectedLookup } from './endpoint.ts';
import { bytesIn, guard } from '../../../util/guard.ts';

export interface ProtectedTcpOptions {
  readonly local: Addr;
  /** `server`: listen on `local`; `client`: open connections from `local` (no listener on it). */
  readonly role: 'server' | 'client';
  readonly onReceive: ReceiveHandler;
  readonly onError?: (e: Error) => void;
  readonly lookup: ProtectedLookup;
  readonly connectTimeoutMs?: number;
}

export interface ProtectedTcpTransport extends SipTransport {
  readonly protocol: 'tcp';
  connections(): { id: string; local: Endpoint; remote: Endpoint }[];
  closeConnection(id: string): void;
}

interface Conn {
  readonly id: string;
  readonly socket: Socket;
  readonly remote: Endpoint;
}

const key = (e: Endpoint) => `${canonicalAddress(e.address)}|${e.port}`;

export async function openProtectedTcp(o: ProtectedTcpOptions): Promise<ProtectedTcpTransport> {
  const conns = new Map<string, Conn>();
  const byRemote = new Map<string, Conn>();
  let seq = 0;
  let closed = false;
  let server: Server | undefined;
  const receive = guard('xfrm.tcp', o.onReceive, bytesIn);

  const adopt = (socket: Socket): Conn => {
    const c: Conn = {
      id: `xfrm-tcp:${o.local.port}:${++seq}`,
      socket,
      remote: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    };
    conns.set(c.id, c);
    byRemote.set(key(c.remote), c);
    const framer = new StreamFramer({ onKeepAlive: () => socket.write('\r\n') });
    socket.on(
      'data',
      guard(
        'xfrm.tcp',
        (chunk: Buffer) => {
          const { messages, error } = framer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
          for (const m of messages) {
            const via = o.lookup.contextFor(o.local, c.remote);
            if (!via) {
              // Not over any of our SAs (no policy covered this port pair): never hand it to SIP.
              o.lookup.countUnprotected();
              socket.destroy();
              return;
            }
            const ctx: ReceiveContext = { protocol: 'tcp', local: o.local, remote: c.remote, connectionId: c.id, via, transport };
            receive(m, ctx);
          }
          // Framing is lost after a malformed message: what came before it was delivered above.
          if (error) {
            o.onError?.(error);
            socket.destroy();
          }
        },
        bytesIn,
      ),
    );
    socket.on('error', (e) => o.onError?.(e));
    socket.on('close', () => {
      conns.delete(c.id);
      if (byRemote.get(key(c.remote)) === c) byRemote.delete(key(c.remote));
    });
    return c;
  };

  if (o.role === 'server') {
    const srv = createServer((s) => adopt(s));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new BackendError(
            'BACKEND_BIND_FAILED',
            `cannot listen on protected TCP port ${o.local.address}:${o.local.port}: ${e.code ?? e.message}`,
          ),
        ),
      );
      srv.listen({ host: o.local.address, port: o.local.port, exclusive: true }, () => resolve());
    });
    srv.on('error', (e) => o.onError?.(e));
    server = srv;
  }

  const open = (to: Endpoint): Promise<Conn> =>
    new Promise<Conn>((resolve, reject) => {
      const s = connect({ host: to.address, port: to.port, localAddress: o.local.address, localPort: o.local.port });
      s.setTimeout(o.connectTimeoutMs ?? 10_000, () => s.destroy(new Error('connect timeout')));
      s.once('connect', () => {
        s.setTimeout(0);
        s.removeAllListeners('error');
        resolve(adopt(s));
      });
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new BackendError('BACKEND_SEND_FAILED', `tcp connect ${o.local.port} -> ${to.address}:${to.port}: ${e.code ?? e.message}`)),
      );
    });

  const transport: ProtectedTcpTransport = {
    protocol: 'tcp',
    local: o.local,
    async send(bytes: Uint8Array, to: Destination): Promise<void> {
      if (closed) throw new BackendError('BACKEND_SEND_FAILED', `protected TCP ${o.local.port} is closed`);
      const byId = to.connectionId !== undefined ? conns.get(to.connectionId) : undefined;
      // The kernel's outbound policy for this port pair must point at a live set before bytes leave;
      // connections go to the SA's inner destination (what the policy selects).
      const { dst } = o.lookup.prepareSend(o.local, byId?.remote ?? to);
      const existing = byId ?? byRemote.get(key({ address: dst, port: to.port })) ?? byRemote.get(key(to));
      if (!existing && o.role === 'server')
        throw new BackendError('BACKEND_SEND_FAILED', `no TCP connection from ${to.address}:${to.port} on server port ${o.local.port}`);
      const c = existing ?? (await open({ address: dst, port: to.port }));
      await new Promise<void>((resolve, reject) =>
        c.socket.write(bytes, (e) =>
          e ? reject(new BackendError('BACKEND_SEND_FAILED', `tcp write to ${key(c.remote)}: ${e.message}`)) : resolve(),
        ),
      );
    },
    connections: () => [...conns.values()].map((c) => ({ id: c.id, local: o.local, remote: c.remote })),
    closeConnection: (id: string) => conns.get(id)?.socket.destroy(),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const c of conns.values()) c.socket.destroy();
      if (server) await new Promise<void>((r) => server!.close(() => r()));
    },
  };
  return transport;
}
