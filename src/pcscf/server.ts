// The P-CSCF's socket edge: everything the P-CSCF binds outside its IPsec backend goes through a
// PcscfEdge — the plain SIP transport, free ports for port_pc/port_ps when 0 was asked, and the
// watch on the protected ports for datagrams that arrive outside ESP. `udpEdge` uses real sockets
// (the default of Pcscf.start); `memoryEdge` puts the P-CSCF on a MemoryNetwork, so that with the
// in-memory backend (ipsec/backends/memory.ts) it runs without a single socket. pcscf.ts opens none.
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { MemoryNetwork } from '../sip/memory-transport.ts';
import type { ReceiveHandler, SipTransport } from '../sip/transport.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import { guard } from '../util/guard.ts';
import type { Source } from './types.ts';

/** Where the P-CSCF gets its sockets outside the IPsec backend: real UDP (`udpEdge`) or a MemoryNetwork (`memoryEdge`) in tests. */
export interface PcscfEdge {
  /** Opens the plain (unprotected) SIP transport on `address`:`port` (0 = any), feeding `onReceive`. */
  openPlain(address: string, port: number, onReceive: ReceiveHandler): Promise<SipTransport>;
  /** A free port on `address` for a protected endpoint, other than those in `avoid`. */
  pickPort(address: string, avoid: readonly number[]): Promise<number>;
  /**
   * Watches a protected port for datagrams outside ESP (33.203 §7.1: only protected traffic there),
   * to count and log them. Undefined when it cannot (the backend owns the port).
   */
  watchProtectedPort(address: string, port: number, onStray: (from: Source) => void): Promise<{ close(): Promise<void> } | undefined>;
}

/** Real sockets: a UDP socket for plain SIP, ports probed by binding, plain guard sockets on port_pc/port_ps. */
export const udpEdge: PcscfEdge = {
  openPlain: (address, port, onReceive) => openUdpTransport({ address, port, onReceive }),
  async pickPort(address, avoid) {
    for (;;) {
      const p = await freeUdpPort(address);
      if (!avoid.includes(p)) return p;
    }
  },
  async watchProtectedPort(address, port, onStray) {
    const s = await guardPort(address, port, onStray);
    return s && { close: () => new Promise<void>((r) => s.close(() => r())) };
  },
};

/** A MemoryNetwork: plain SIP bound on it, protected ports numbered from `firstPort`, no guard (no plain path to them). */
export function memoryEdge(net: MemoryNetwork, firstPort = 45000): PcscfEdge {
  let next = firstPort;
  return {
    openPlain: async (address, port, onReceive) => net.bind({ address, port, onReceive }),
    async pickPort(_address, avoid) {
      while (avoid.includes(next)) next++;
      return next++;
    },
    watchProtectedPort: async () => undefined,
  };
}

async function freeUdpPort(address: string): Promise<number> {
  const s = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A plain UDP socket on a protected port, only to count and log what arrives there outside ESP. Skipped when the backend owns the port. */
async function guardPort(address: string, port: number, onDatagram: (from: Source) => void): Promise<Socket | undefined> {
  const s = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ port, address, exclusive: true }, () => resolve());
    });
  } catch {
    s.close();
    return undefined;
  }
  s.on(
    'message',
    guard(
      'pcscf.protected-port',
      (m: Buffer, rinfo: { address: string; port: number }) => onDatagram({ address: rinfo.address, port: rinfo.port }),
      (m) => m.length,
    ),
  );
  s.on('error', () => {});
  return s;
}
