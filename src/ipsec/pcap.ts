// Capture files: a classic-pcap writer (LINKTYPE_RAW, so records are bare IP packets) and a reader
// for classic pcap (both byte orders, µs and ns) and pcapng (SHB/IDB/EPB/SPB) that yields IP packets.
// Formats: tcpdump pcap-savefile(5), IETF draft-ietf-opsawg-pcapng, link types per tcpdump.org.
import { closeSync, openSync, writeSync } from 'node:fs';
import { PcapError } from './errors.ts';
import { attempt, type Result } from '../util/result.ts';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAP_SNAPLEN = 65535;
const PCAP_FILE_HEADER_LEN = 24;
const PCAP_RECORD_HEADER_LEN = 16;

/** pcap link types written and read (tcpdump.org linktypes). */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW_OLD_A: 12, // DLT_RAW on some BSDs / Linux history
  RAW_OLD_B: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

// ---------------------------------------------------------------- writer (pure part)

/** The 24-octet classic pcap file header: magic a1b2c3d4 (µs), v2.4, snaplen 65535, LINKTYPE_RAW. */
export function pcapFileHeader(linktype: number = LINKTYPE.RAW): Uint8Array {
  const b = Buffer.alloc(PCAP_FILE_HEADER_LEN);
  b.writeUInt32LE(PCAP_MAGIC_US, 0); // written little-endian; readers detect the order by the magic
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8); // thiszone
  b.writeUInt32LE(0, 12); // sigfigs
  b.writeUInt32LE(PCAP_SNAPLEN, 16);
  b.writeUInt32LE(linktype, 20);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** One record: 16-octet header + packet. `timestampUs` is microseconds since the epoch, given by the caller. */
export function pcapRecord(packet: Uint8Array, timestampUs: number): Uint8Array {
  if (!Number.isSafeInteger(timestampUs) || timestampUs < 0)
    throw new RangeError(`timestampUs: must be a non-negative integer, got ${timestampUs}`);
  const caplen = Math.min(packet.length, PCAP_SNAPLEN);
  const b = Buffer.alloc(PCAP_RECORD_HEADER_LEN + caplen);
  b.writeUInt32LE(Math.floor(timestampUs / 1e6) >>> 0, 0);
  b.writeUInt32LE(timestampUs % 1e6, 4);
  b.writeUInt32LE(caplen, 8);
  b.writeUInt32LE(packet.length, 12);
  b.set(packet.subarray(0, caplen), PCAP_RECORD_HEADER_LEN);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** A whole pcap file in memory (tests, small captures). */
export function buildPcap(packets: readonly { ip: Uint8Array; timestampUs: number }[]): Uint8Array {
  return Buffer.concat([pcapFileHeader(), ...packets.map((p) => pcapRecord(p.ip, p.timestampUs))]);
}

// ---------------------------------------------------------------- writer (edge)

/** A pcap file being written, one IP packet per record (see {@link openPcapWriter}). */
export interface PcapFileWriter {
  readonly path: string;
  /** Appends one IP packet; the timestamp defaults to the writer's clock. */
  write(ip: Uint8Array, timestampUs?: number): void;
  close(): void;
}

/**
 * Opens (truncates) `path` and writes the header. Writes are synchronous and unbuffered so a
 * capture is complete up to the last packet even if the process dies (demo and backend logging).
 */
export function openPcapWriter(path: string, opts: { nowUs?: () => number } = {}): PcapFileWriter {
  const nowUs = opts.nowUs ?? (() => Date.now() * 1000);
  let fd: number | undefined = openSync(path, 'w');
  writeSync(fd, pcapFileHeader());
  return {
    path,
    write(ip, timestampUs) {
      if (fd === undefined) throw new Error(`pcap writer for ${path} is closed`);
      writeSync(fd, pcapRecord(ip, timestampUs ?? Math.floor(nowUs())));
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

// ---------------------------------------------------------------- reader

/** One IP packet read from a capture, with its timestamp. */
export interface CapturedIp {
  /** 1-based record number in the file, counting every record (as Wireshark's frame.number). */
  readonly frame: number;
  /** Microseconds since the epoch; absent for pcapng Simple Packet Blocks. */
  readonly timestampUs?: number;
  readonly linktype: number;
  /** The IP packet (IPv4 or IPv6 header first). */
  readonly ip: Uint8Array;
  /** True when the capture kept fewer octets than were on the wire (snaplen). */
  readonly partial: boolean;
}

/** What {@link readCapture} found: the IP packets, and how many records were not IP. */
export interface CaptureContents {
  readonly format: 'pcap' | 'pcapng';
  readonly packets: CapturedIp[];
  /** Records that hold no IP packet (ARP, other ethertypes, unknown families). */
  readonly skipped: number;
  /** The file ends inside a record (e.g. the capture was cut off); everything before it is returned. */
  readonly truncated: boolean;
}

/** Reads a classic pcap or pcapng file (untrusted input): a result with a PcapError, never a throw. */
export function readCapture(data: Uint8Array): Result<CaptureContents, PcapError> {
  return attempt(PcapError, () => readCaptureOrThrow(data));
}

/** readCapture for trusted files (tests, captures this process wrote): throws PcapError. */
export function readCaptureOrThrow(data: Uint8Array): CaptureContents {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < 4) throw new PcapError('PCAP_BAD_MAGIC', `capture: ${b.length} octets, too short for a file header`);
  const m = b.readUInt32BE(0);
  if (m === 0x0a0d0d0a) return readPcapng(b);
  return readClassic(b);
}

function readClassic(b: Buffer): CaptureContents {
  if (b.length < PCAP_FILE_HEADER_LEN) throw new PcapError('PCAP_MALFORMED', 'pcap: file header truncated');
  const be = b.readUInt32BE(0);
  const le = b.readUInt32LE(0);
  let little: boolean;
  let nano: boolean;
  if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) [little, nano] = [true, le === PCAP_MAGIC_NS];
  else if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) [little, nano] = [false, be === PCAP_MAGIC_NS];
  else throw new PcapError('PCAP_BAD_MAGIC', `capture: unknown magic 0x${be.toString(16).padStart(8, '0')} (not pcap or pcapng)`);
  const u32 = (o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
  // The top bits of the link-type field may carry FCS information (pcap-linktype(7)); mask them.
  const linktype = u32(20) & 0x0fffffff;
  checkLinktype(linktype);
  const packets: CapturedIp[] = [];
  let skipped = 0;
  let off = PCAP_FILE_HEADER_LEN;
  let frame = 0;
  while (off < b.length) {
    if (off + PCAP_RECORD_HEADER_LEN > b.length) return { format: 'pcap', packets, skipped, truncated: true };
    const sec = u32(off);
    const frac = u32(off + 4);
    const caplen = u32(off + 8);
    const origlen = u32(off + 12);
    const start = off + PCAP_RECORD_HEADER_LEN;
    if (caplen > 0x4000000) throw new PcapError('PCAP_MALFORMED', `pcap: record ${frame + 1} claims ${caplen} octets`);
    if (start + caplen > b.length) return { format: 'pcap', packets, skipped, truncated: true };
    frame++;
    const ip = linkToIp(linktype, b.subarray(start, start + caplen));
    const timestampUs = sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac);
    if (ip) packets.push({ frame, timestampUs, linktype, ip, partial: origlen > caplen });
    else skipped++;
    off = start + caplen;
  }
  return { format: 'pcap', packets, skipped, truncated: false };
}

function readPcapng(b: Buffer): CaptureContents {
  interface Iface {
    linktype: number;
    snaplen: number;
    unitsPerSec: number;
    offsetSec: number;
  }
  const packets: CapturedIp[] = [];
  let skipped = 0;
  let little = true;
  let ifaces: Iface[] = [];
  let off = 0;
  let frame = 0;
  const done = (truncated: boolean): CaptureContents => ({ format: 'pcapng', packets, skipped, truncated });
  while (off < b.length) {
    if (off + 12 > b.length) return done(true);
    let type = b.readUInt32LE(off);
    if (type === 0x0a0d0d0a) {
      // Section Header Block: its byte-order magic decides how to read this whole section.
      const bom = b.readUInt32LE(off + 8);
      if (bom === 0x1a2b3c4d) little = true;
      else if (bom === 0x4d3c2b1a) little = false;
      else throw new PcapError('PCAP_BAD_MAGIC', `pcapng: bad byte-order magic at offset ${off}`);
      ifaces = [];
    }
    const u32 = (o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u16 = (o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
    type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || len % 4 !== 0) throw new PcapError('PCAP_MALFORMED', `pcapng: block at offset ${off} has length ${len}`);
    if (off + len > b.length) return done(true);
    const body = off + 8;
    const end = off + len - 4; // the trailing copy of the length
    if (type === 1) {
      // Interface Description Block: link type, snaplen, options (if_tsresol = 9, if_tsoffset = 14).
      if (end - body < 8) throw new PcapError('PCAP_MALFORMED', `pcapng: short IDB at offset ${off}`);
      const iface: Iface = { linktype: u16(body), snaplen: u32(body + 4), unitsPerSec: 1e6, offsetSec: 0 };
      for (let o = body + 8; o + 4 <= end;) {
        const code = u16(o);
        const olen = u16(o + 2);
        if (code === 0 || o + 4 + olen > end) break;
        if (code === 9 && olen >= 1) {
          const r = b[o + 4]!;
          iface.unitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        } else if (code === 14 && olen >= 8) {
          iface.offsetSec = Number(little ? b.readBigInt64LE(o + 4) : b.readBigInt64BE(o + 4));
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push(iface);
    } else if (type === 6 || type === 3) {
      frame++;
      let ifc: Iface | undefined;
      let data: Buffer;
      let timestampUs: number | undefined;
      let origlen: number;
      if (type === 6) {
        // Enhanced Packet Block: interface id, 64-bit timestamp in the interface's units, caplen, origlen.
        if (end - body < 20) throw new PcapError('PCAP_MALFORMED', `pcapng: short EPB at offset ${off}`);
        ifc = ifaces[u32(body)];
        const caplen = u32(body + 12);
        origlen = u32(body + 16);
        if (body + 20 + caplen > end) throw new PcapError('PCAP_MALFORMED', `pcapng: EPB data past its block at offset ${off}`);
        data = b.subarray(body + 20, body + 20 + caplen);
        if (ifc) {
          const ts = (BigInt(u32(body + 4)) << 32n) | BigInt(u32(body + 8));
          const units = BigInt(Math.round(ifc.unitsPerSec));
          timestampUs = Number((ts * 1_000_000n) / units) + ifc.offsetSec * 1e6;
        }
      } else {
        // Simple Packet Block: interface 0, no timestamp, captured length = min(origlen, snaplen, room).
        ifc = ifaces[0];
        if (end - body < 4) throw new PcapError('PCAP_MALFORMED', `pcapng: short SPB at offset ${off}`);
        origlen = u32(body);
        const room = end - body - 4;
        const caplen = Math.min(origlen, room, ifc && ifc.snaplen > 0 ? ifc.snaplen : room);
        data = b.subarray(body + 4, body + 4 + caplen);
      }
      if (!ifc) throw new PcapError('PCAP_MALFORMED', `pcapng: packet block at offset ${off} names an undeclared interface`);
      checkLinktype(ifc.linktype);
      const ip = linkToIp(ifc.linktype, data);
      if (ip)
        packets.push({
          frame,
          ...(timestampUs === undefined ? {} : { timestampUs }),
          linktype: ifc.linktype,
          ip,
          partial: origlen > data.length,
        });
      else skipped++;
    }
    // Other blocks (name resolution, statistics, custom, obsolete packet blocks) are skipped.
    off += len;
  }
  return done(false);
}

const SUPPORTED = new Set<number>(Object.values(LINKTYPE));

function checkLinktype(lt: number): void {
  if (!SUPPORTED.has(lt))
    throw new PcapError(
      'PCAP_UNSUPPORTED_LINKTYPE',
      `capture: link type ${lt} is not supported (raw IP, Ethernet, Linux SLL/SLL2, NULL/LOOP)`,
    );
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;

/** Strips the link-layer header; undefined when the frame does not carry IPv4/IPv6. */
function linkToIp(linktype: number, f: Buffer): Uint8Array | undefined {
  let ip: Buffer | undefined;
  switch (linktype) {
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_OLD_A:
    case LINKTYPE.RAW_OLD_B:
    case LINKTYPE.IPV4:
    case LINKTYPE.IPV6:
      ip = f;
      break;
    case LINKTYPE.ETHERNET: {
      if (f.length < 14) return undefined;
      let et = f.readUInt16BE(12);
      let o = 14;
      if (et === ETHERTYPE_VLAN) {
        // One 802.1Q tag: TCI, then the real ethertype.
        if (f.length < 18) return undefined;
        et = f.readUInt16BE(16);
        o = 18;
      }
      ip = et === ETHERTYPE_IPV4 || et === ETHERTYPE_IPV6 ? f.subarray(o) : undefined;
      break;
    }
    case LINKTYPE.LINUX_SLL: {
      if (f.length < 16) return undefined;
      const et = f.readUInt16BE(14);
      ip = et === ETHERTYPE_IPV4 || et === ETHERTYPE_IPV6 ? f.subarray(16) : undefined;
      break;
    }
    case LINKTYPE.LINUX_SLL2: {
      if (f.length < 20) return undefined;
      const et = f.readUInt16BE(0);
      ip = et === ETHERTYPE_IPV4 || et === ETHERTYPE_IPV6 ? f.subarray(20) : undefined;
      break;
    }
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      // 4-octet address family: host order for NULL (either order here), network order for LOOP.
      if (f.length < 4) return undefined;
      const fams = [f.readUInt32BE(0), f.readUInt32LE(0)];
      const ok = fams.some((v) => v === 2 || v === 24 || v === 28 || v === 30);
      ip = ok ? f.subarray(4) : undefined;
      break;
    }
    default:
      return undefined;
  }
  if (!ip || ip.length < 1) return undefined;
  const version = ip[0]! >> 4;
  if (version !== 4 && version !== 6) return undefined;
  return new Uint8Array(ip.buffer, ip.byteOffset, ip.length);
}
