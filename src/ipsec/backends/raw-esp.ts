// A raw IP socket for protocol 50 (ESP in transport mode), through the maintained native
// `raw-socket` package. Needs CAP_NET_RAW; without it, a clear error that names the capability.
// On receive, IPv4 raw sockets hand us the IP header too, IPv6 ones only the payload.
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { buildIpPacket, parseIpPacket } from '../esp/index.ts';
import { BackendError } from './errors.ts';

export const IPPROTO_ESP = 50;

export interface RawEspSocket {
  /**
   * Sends one ESP packet to `dst`. IPv4 goes out with our own header (IP_HDRINCL: built from
   * `localIp`, or `ipv4Packet` as given), so the source is ours even when the route would pick another.
   */
  send(esp: Uint8Array, dst: string, ipv4Packet?: Uint8Array): Promise<void>;
  close(): void;
}

interface RawSocketModule {
  AddressFamily: { IPv4: number; IPv6: number };
  SocketLevel: { IPPROTO_IP: number };
  SocketOption: { IP_HDRINCL: number };
  createSocket(o: { protocol: number; addressFamily: number }): {
    on(ev: 'message', f: (b: Buffer, src: string) => void): void;
    on(ev: 'error', f: (e: Error) => void): void;
    send(b: Buffer, off: number, len: number, addr: string, cb: (e: Error | null, n: number) => void): void;
    setOption(level: number, option: number, value: number): void;
    close(): void;
  };
}

/**
 * Opens the socket for `localIp`'s family. `onEsp` gets each ESP packet addressed to `localIp`
 * (other destinations are another process's business) with its source, and for IPv4 the whole
 * IP packet as received (for pcap).
 */
export async function openRawEsp(localIp: string, onEsp: (esp: Uint8Array, src: string, ip?: Uint8Array) => void): Promise<RawEspSocket> {
  const v6 = isIP(localIp) === 6;
  let raw: RawSocketModule;
  try {
    raw = createRequire(import.meta.url)('raw-socket') as RawSocketModule;
  } catch (e) {
    throw new BackendError('BACKEND_NO_RAW_SOCKET', `mod=trans needs the raw-socket package (npm ci): ${(e as Error).message}`);
  }
  let sock: ReturnType<RawSocketModule['createSocket']>;
  try {
    sock = raw.createSocket({ protocol: IPPROTO_ESP, addressFamily: v6 ? raw.AddressFamily.IPv6 : raw.AddressFamily.IPv4 });
  } catch (e) {
    const msg = (e as Error).message;
    if (/not permitted|EPERM|EACCES/i.test(msg)) {
      throw new BackendError(
        'BACKEND_NEED_CAP_NET_RAW',
        'mod=trans sends ESP over raw IP (protocol 50) and needs CAP_NET_RAW: run as root, grant it (setcap cap_net_raw+ep $(which node)), or use mod=UDP-enc-tun',
      );
    }
    throw new BackendError('BACKEND_NO_RAW_SOCKET', `cannot open a raw ESP socket: ${msg}`);
  }
  // IPv4: we write the IP header ourselves so the source is localIp (a UE on 127.0.0.2 talking to
  // 127.0.0.1 would otherwise send from 127.0.0.1 and fail the peer's selector check).
  if (!v6) sock.setOption(raw.SocketLevel.IPPROTO_IP, raw.SocketOption.IP_HDRINCL, 1);
  sock.on('error', () => {
    // Send errors surface through the send callback; receive errors have nobody to tell.
  });
  sock.on('message', (b, src) => {
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.length);
    if (v6) {
      onEsp(bytes, src);
      return;
    }
    const ip = parseIpPacket(bytes);
    if (!ip || ip.protocol !== IPPROTO_ESP || ip.dst !== localIp) return;
    onEsp(ip.payload, ip.src, bytes);
  });
  return {
    send: (esp, dst, ipv4Packet) =>
      new Promise<void>((resolve, reject) => {
        const out = v6 ? esp : (ipv4Packet ?? buildIpPacket({ src: localIp, dst, protocol: IPPROTO_ESP, payload: esp }));
        const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
        sock.send(b, 0, b.length, dst, (err) =>
          err ? reject(new BackendError('BACKEND_SEND_FAILED', `raw ESP send to ${dst} failed: ${err.message}`)) : resolve(),
        );
      }),
    close: () => sock.close(),
  };
}
