// Guest helper in netns "k": a plain UDP application (node dgram) on the kernel's protected ports.
// It knows nothing of ESP: the kernel's XFRM policies and SAs protect what it sends and unprotect
// what it gets. It can also inject raw bytes (a captured kernel ESP packet) towards the userspace side.
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { openRawEsp, type RawEspSocket } from '../../src/ipsec/backends/raw-esp.ts';
import { serve } from './guest-rpc.ts';
import type { ReceivedMessage } from './interop-grid.ts';

interface Addr {
  address: string;
  port: number;
}
const sockets = new Map<string, Socket>();
const received: ReceivedMessage[] = [];
const raws = new Map<string, Promise<RawEspSocket>>();
const key = (a: Addr) => `${a.address}|${a.port}`;

serve({
  async bind({ binds }: { binds: Addr[] }) {
    for (const a of binds) {
      if (sockets.has(key(a))) continue;
      const s = createSocket(isIP(a.address) === 6 ? 'udp6' : 'udp4');
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(a.port, a.address, () => resolve());
      });
      s.on('message', (msg, rinfo) =>
        received.push({ local: { ...a }, remote: { address: rinfo.address, port: rinfo.port }, text: msg.toString('latin1') }),
      );
      sockets.set(key(a), s);
    }
    return null;
  },

  /** Sends each text from its bound socket; the kernel's `dir out` policy picks the SA. */
  async send({ items }: { items: { from: Addr; to: Addr; text: string }[] }) {
    const errors: (string | null)[] = [];
    for (const it of items) {
      const s = sockets.get(key(it.from));
      if (!s) {
        errors.push(`no socket bound to ${key(it.from)}`);
        continue;
      }
      errors.push(
        await new Promise<string | null>((resolve) =>
          s.send(Buffer.from(it.text, 'latin1'), it.to.port, it.to.address, (e) => resolve(e ? e.message : null)),
        ),
      );
    }
    return errors;
  },

  received() {
    return received.splice(0);
  },

  /**
   * Sends an ESP packet (base64) as captured, in the clear as far as XFRM is concerned (no policy
   * selects protocol 50 or these ports): transport as IP protocol 50, UDP-enc-tun as a UDP payload
   * to the userspace side's encapsulation port.
   */
  async inject({ src, dst, mode, esp, encapPort }: { src: string; dst: string; mode: string; esp: string; encapPort: number }) {
    const bytes = Buffer.from(esp, 'base64');
    if (mode === 'transport') {
      // One raw socket per address, kept open (closing and reopening raw-socket fds has hung a send).
      let raw = raws.get(src);
      if (!raw) raws.set(src, (raw = openRawEsp(src, () => {})));
      await (await raw).send(bytes, dst);
    } else {
      const s = createSocket(isIP(dst) === 6 ? 'udp6' : 'udp4');
      try {
        await new Promise<void>((resolve, reject) => s.send(bytes, encapPort, dst, (e) => (e ? reject(e) : resolve())));
      } finally {
        s.close();
      }
    }
    return null;
  },

  closeAll() {
    for (const s of sockets.values()) s.close();
    sockets.clear();
    return null;
  },
});
