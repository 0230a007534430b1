// A raw IP socket for protocol 50 (ESP in transport mode), through the maintained native
// `raw-socket` package. Needs CAP_NET_RAW; without it, a clear error that names the capability.
// On receive, IPv4 raw sockets hand us the IP header too, IPv6 ones only the payload. IPv4 packets
// larger than the link MTU are fragmented here (the kernel does not fragment IP_HDRINCL packets).
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { finish, sum16 } from '../esp/checksum.ts';
import { buildIpPacket, parseIpPacket } from '../esp/index.ts';
import { guard } from '../../util/guard.ts';
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
  sock.on(
    'message',
    guard(
      'esp.raw',
      (b: Buffer, src: string) => {
        const bytes = new Uint8Array(b.buffer, b.byteOffset, b.length);
        if (v6) {
          onEsp(bytes, src);
          return;
        }
        const ip = parseIpPacket(bytes);
        if (!ip || ip.protocol !== IPPROTO_ESP || ip.dst !== localIp) return;
        onEsp(ip.payload, ip.src, bytes);
      },
      (b) => b.length,
    ),
  );
  const sendOne = (out: Uint8Array, dst: string) =>
    new Promise<void>((resolve, reject) => {
      const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      sock.send(b, 0, b.length, dst, (err) => (err ? reject(err) : resolve()));
    });
  const failed = (dst: string, err: unknown) =>
    new BackendError('BACKEND_SEND_FAILED', `raw ESP send to ${dst} failed: ${(err as Error).message}`);
  return {
    send: async (esp, dst, ipv4Packet) => {
      const out = v6 ? esp : (ipv4Packet ?? buildIpPacket({ src: localIp, dst, protocol: IPPROTO_ESP, payload: esp }));
      try {
        await sendOne(out, dst);
        return;
      } catch (e) {
        if (v6 || !/message too long|EMSGSIZE/i.test((e as Error).message)) throw failed(dst, e);
      }
      // RFC 4303 §3.3.4: an ESP packet may be fragmented after ESP processing (the receiver
      // reassembles before it, §3.4.1). The MTU is not known here: try the common ones, largest first.
      let last: unknown;
      for (const mtu of FRAGMENT_SIZES) {
        try {
          for (const f of fragmentIpv4(out, mtu)) await sendOne(f, dst);
          return;
        } catch (e) {
          last = e;
          if (!/message too long|EMSGSIZE/i.test((e as Error).message)) break;
        }
      }
      throw failed(dst, last);
    },
    close: () => sock.close(),
  };
}

const FRAGMENT_SIZES = [1500, 1280, 576];

/** RFC 791 fragmentation of one IPv4 packet into packets of at most `mtu` octets (DF cleared, one fresh ID). */
export function fragmentIpv4(packet: Uint8Array, mtu: number): Uint8Array[] {
  const hl = (packet[0]! & 0x0f) * 4;
  const payload = packet.subarray(hl);
  const chunk = Math.floor((mtu - hl) / 8) * 8;
  if (chunk <= 0) throw new BackendError('BACKEND_BAD_PARAMS', `MTU ${mtu} leaves no room for a fragment`);
  const id = randomInt(1, 0x10000);
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const part = payload.subarray(off, off + chunk);
    const f = new Uint8Array(hl + part.length);
    f.set(packet.subarray(0, hl));
    f.set(part, hl);
    const dv = new DataView(f.buffer);
    dv.setUint16(2, f.length);
    dv.setUint16(4, id);
    dv.setUint16(6, (off + chunk < payload.length ? 0x2000 : 0) | (off / 8));
    dv.setUint16(10, 0);
    dv.setUint16(10, finish(sum16(f, 0, hl)));
    out.push(f);
  }
  return out;
}
