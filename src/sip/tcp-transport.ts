// SIP over TCP (RFC 3261 §18) on node:net: a listening socket plus outgoing connections reused per
// remote address:port. Each connection has its own StreamFramer; its id travels in the receive context
// so responses go back on the connection the request came in on (§18.2.2). A framing error is reported
// (code, reason, octets) and closes that connection: framing cannot be recovered on a stream.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { bytesIn, guard } from '../util/guard.ts';
import { SipError } from './errors.ts';
import type { ParseLimits } from './parser.ts';
import { StreamFramer } from './stream-framer.ts';
import {
  endpointKey,
  type Destination,
  type Endpoint,
  type MalformedInputHandler,
  type ReceiveContext,
  type ReceiveHandler,
  type SipTransport,
} from './transport.ts';

export interface TcpTransportOptions {
  readonly address: string;
  /** 0 or absent: an ephemeral port. */
  readonly port?: number;
  readonly onReceive: ReceiveHandler;
  /** Bytes that could not be framed; the connection is closed afterwards. */
  readonly onMalformed?: MalformedInputHandler;
  readonly onError?: (error: Error) => void;
  readonly via?: unknown;
  readonly limits?: Partial<ParseLimits>;
  /** Give up on an outgoing connection after this long (default 10 s). */
  readonly connectTimeoutMs?: number;
}

export interface TcpConnectionInfo {
  readonly id: string;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** True when this side opened it. */
  readonly outgoing: boolean;
}

export interface TcpTransport extends SipTransport {
  readonly protocol: 'tcp';
  connections(): TcpConnectionInfo[];
  closeConnection(id: string): void;
}

interface Conn extends TcpConnectionInfo {
  readonly socket: Socket;
}

export async function openTcpTransport(options: TcpTransportOptions): Promise<TcpTransport> {
  const conns = new Map<string, Conn>();
  const byRemote = new Map<string, Conn>();
  const connecting = new Map<string, Promise<Conn>>();
  let seq = 0;
  let closed = false;

  const server: Server = createServer((socket) => adopt(socket, false));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.address, port: options.port ?? 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => options.onError?.(err));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new SipError('SIP_TRANSPORT_FAILED', 'tcp: no bound address');
  const local: Endpoint = { address: addr.address, port: addr.port };
  // One boundary per framed message: a bug above costs that message, not the rest of the chunk.
  const receive = guard('sip.tcp', options.onReceive, bytesIn);

  function adopt(socket: Socket, outgoing: boolean): Conn {
    const conn: Conn = {
      id: `tcp:${++seq}`,
      local: { address: socket.localAddress ?? local.address, port: socket.localPort ?? local.port },
      remote: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
      outgoing,
      socket,
    };
    conns.set(conn.id, conn);
    byRemote.set(endpointKey(conn.remote), conn);
    const context: ReceiveContext = {
      protocol: 'tcp',
      local: conn.local,
      remote: conn.remote,
      connectionId: conn.id,
      transport,
      ...(options.via !== undefined && { via: options.via }),
    };
    // RFC 5626 §3.5.1: a double-CRLF ping is answered with a single CRLF pong.
    const framer = new StreamFramer({ ...options.limits, onKeepAlive: () => socket.write('\r\n') });
    socket.on(
      'data',
      guard(
        'sip.tcp',
        (chunk: Buffer) => {
          const held = framer.buffered + chunk.length;
          const { messages, error } = framer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
          // What was framed before a malformed message is delivered; then the stream is lost.
          for (const m of messages) receive(m, context);
          if (error) {
            options.onMalformed?.({ code: error.code, reason: error.message, length: held, context });
            socket.destroy();
          }
        },
        bytesIn,
      ),
    );
    socket.on('error', (err) => options.onError?.(err));
    socket.on('close', () => {
      conns.delete(conn.id);
      if (byRemote.get(endpointKey(conn.remote)) === conn) byRemote.delete(endpointKey(conn.remote));
    });
    return conn;
  }

  function open(to: Endpoint): Promise<Conn> {
    const key = endpointKey(to);
    const pending = connecting.get(key);
    if (pending) return pending;
    const p = new Promise<Conn>((resolve, reject) => {
      const socket = connect({ host: to.address, port: to.port });
      socket.setTimeout(options.connectTimeoutMs ?? 10_000, () => socket.destroy(new Error('connect timeout')));
      socket.once('connect', () => {
        socket.setTimeout(0);
        socket.removeAllListeners('error');
        resolve(adopt(socket, true));
      });
      socket.once('error', (err) => reject(new SipError('SIP_UNREACHABLE', `tcp connect to ${key}: ${err.message}`)));
    }).finally(() => connecting.delete(key));
    connecting.set(key, p);
    return p;
  }

  const transport: TcpTransport = {
    protocol: 'tcp',
    local,
    async send(bytes: Uint8Array, to: Destination): Promise<void> {
      if (closed) throw new SipError('SIP_TRANSPORT_CLOSED', `tcp ${endpointKey(local)} is closed`);
      const byId = to.connectionId === undefined ? undefined : conns.get(to.connectionId);
      const conn = byId ?? byRemote.get(endpointKey(to)) ?? (await open(to));
      await new Promise<void>((resolve, reject) => {
        conn.socket.write(bytes, (err) =>
          err ? reject(new SipError('SIP_TRANSPORT_FAILED', `tcp write to ${endpointKey(conn.remote)}: ${err.message}`)) : resolve(),
        );
      });
    },
    connections: () => [...conns.values()].map(({ id, local: l, remote, outgoing }) => ({ id, local: l, remote, outgoing })),
    closeConnection(id: string): void {
      conns.get(id)?.socket.destroy();
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      for (const c of conns.values()) c.socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return transport;
}
