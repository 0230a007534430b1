// `imsec esp decode`: checks and decrypts captured ESP (RFC 4303; RFC 3948 on 4500 and extra
// ports) with keys in Wireshark's esp_sa format, one verdict per packet. Replay is judged across
// the packets of one run, one window per (esp_sa line, SPI). Verdicts are data: exit 0 if all was read.
import { unwrap } from '../util/result.ts';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fromHex, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { createInbound, type EspDrop, type EspInbound, parseInner, parseWire } from '../ipsec/esp/index.ts';
import { findEspSa, parseEspSa, type EspSaEntry } from '../ipsec/key-export.ts';
import { readCapture } from '../ipsec/pcap.ts';
import { DEFAULT_REPLAY_WINDOW, MIN_REPLAY_WINDOW, NAT_T_PORT } from '../ipsec/types.ts';
import { printTable, type Row } from './output.ts';
import { formatSpi, parseIntArg } from './parse-args.ts';

export type Verdict = 'ok' | 'icv_failure' | 'replay' | 'unknown_spi' | 'bad_padding' | 'dummy' | 'keepalive' | 'malformed' | 'not_esp';

export interface DecodedPacket {
  n: number;
  src?: string;
  dst?: string;
  encapSrcPort?: number;
  encapDstPort?: number;
  spi?: number;
  seq?: number;
  verdict: Verdict;
  /** The esp_sa line that matched. */
  keyLine?: number;
  /** On ok: ESP Next Header and, when it parses, the inner segment. */
  nextHeader?: number;
  inner?: { src: string; dst: string; protocol: number; srcPort: number; dstPort: number };
  payload?: Uint8Array;
}

const DROP_VERDICT: Readonly<Record<EspDrop, Verdict>> = {
  short: 'malformed',
  malformed: 'malformed',
  'unknown-spi': 'unknown_spi',
  replay: 'replay',
  'outside-window': 'replay',
  icv: 'icv_failure',
  padding: 'bad_padding',
  selector: 'malformed',
  dummy: 'dummy',
};

/** The decoder proper (pure apart from the state it keeps between packets of one run). */
export function decodeEspPackets(
  entries: readonly EspSaEntry[],
  packets: readonly { n: number; ip: Uint8Array }[],
  opts: { encapPorts?: readonly number[]; replayWindow?: number } = {},
): DecodedPacket[] {
  const encapPorts = [...new Set([NAT_T_PORT, ...(opts.encapPorts ?? [])])];
  const windows = new Map<string, EspInbound>();
  return packets.map(({ n, ip }): DecodedPacket => {
    const w = parseWire(ip, { encapPorts });
    if (w.kind === 'malformed') return { n, verdict: 'malformed' };
    if (w.kind === 'other') return { n, src: w.src, dst: w.dst, verdict: 'not_esp' };
    const base = { n, src: w.src, dst: w.dst, ...(w.encap ? { encapSrcPort: w.encap.srcPort, encapDstPort: w.encap.dstPort } : {}) };
    if (w.kind === 'keepalive') return { ...base, verdict: 'keepalive' };
    if (w.kind !== 'esp') return { ...base, verdict: 'not_esp' };
    const head = { ...base, spi: w.spi, seq: w.seq };
    const e = findEspSa(entries, w);
    if (!e) return { ...head, verdict: 'unknown_spi' };
    const k = `${e.line}|${w.spi}`;
    let inbound = windows.get(k);
    if (!inbound) {
      inbound = createInbound({
        spi: w.spi,
        alg: e.alg,
        ealg: e.ealg,
        keys: e.keys,
        replayWindow: opts.replayWindow ?? DEFAULT_REPLAY_WINDOW,
      });
      windows.set(k, inbound);
    }
    const r = inbound.open(w.esp);
    if (!r.ok) return { ...head, keyLine: e.line, verdict: DROP_VERDICT[r.drop] };
    // Next Header 4/41: a tunnel-mode inner IP packet; anything else: transport (also RFC 3948 transport-in-UDP).
    const mode = r.nextHeader === 4 || r.nextHeader === 41 ? 'udp-enc-tunnel' : 'transport';
    const inner = parseInner(mode, r.nextHeader, r.payload, { src: w.src, dst: w.dst });
    if (!inner) return { ...head, keyLine: e.line, verdict: 'ok', nextHeader: r.nextHeader, payload: r.payload };
    const { payload, ...seg } = inner;
    return { ...head, keyLine: e.line, verdict: 'ok', nextHeader: r.nextHeader, inner: seg, payload };
  });
}

const SIP_START = /^(?:[A-Z][A-Z-]* \S+ SIP\/2\.0\r?\n|SIP\/2\.0 \d{3} )/;

/** The payload as text when it looks like SIP, else undefined. */
export function sipText(p: Uint8Array): string | undefined {
  const s = Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('latin1');
  return SIP_START.test(s) ? s : undefined;
}

const PROTO_NAME: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp' };
const spiHex = formatSpi;

function jsonRow(d: DecodedPacket): Record<string, unknown> {
  const text = d.payload && sipText(d.payload);
  return {
    n: d.n,
    src: d.src,
    dst: d.dst,
    encap_src_port: d.encapSrcPort,
    encap_dst_port: d.encapDstPort,
    spi: d.spi === undefined ? undefined : spiHex(d.spi),
    seq: d.seq,
    verdict: d.verdict,
    key_line: d.keyLine,
    next_header: d.nextHeader,
    inner_src: d.inner?.src,
    inner_dst: d.inner?.dst,
    protocol: d.inner ? (PROTO_NAME[d.inner.protocol] ?? d.inner.protocol) : undefined,
    src_port: d.inner?.srcPort,
    dst_port: d.inner?.dstPort,
    payload_text: text,
    payload_hex: d.payload && text === undefined ? toHex(d.payload) : undefined,
  };
}

function tableRow(d: DecodedPacket): Row {
  let payload: string | undefined;
  if (d.payload) {
    const text = sipText(d.payload);
    const hex = toHex(d.payload);
    payload = text !== undefined ? text.split(/\r?\n/, 1)[0] : hex.length > 64 ? `${hex.slice(0, 64)}… (${d.payload.length} octets)` : hex;
  }
  return {
    n: d.n,
    spi: d.spi === undefined ? '' : spiHex(d.spi),
    seq: d.seq ?? '',
    verdict: d.verdict,
    proto: d.inner ? (PROTO_NAME[d.inner.protocol] ?? String(d.inner.protocol)) : '',
    ports: d.inner ? `${d.inner.srcPort}->${d.inner.dstPort}` : '',
    payload: payload ?? '',
  };
}

function readInput(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InputError(`${option}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const intOption = parseIntArg;

interface DecodeCliOptions {
  keys: string;
  pcap?: string;
  hex?: string;
  encapPort?: string[];
  replayWindow?: string;
  json?: boolean;
}

export function registerEsp(program: Command): void {
  const esp = program.command('esp').description('userspace ESP tools (RFC 4303, RFC 3948)');
  esp
    .command('decode')
    .description('verify and decrypt captured ESP with Wireshark esp_sa keys; one verdict per packet')
    .requiredOption('--keys <file>', "esp_sa file (Wireshark UAT format, as imsec's key export writes it)")
    .option('--pcap <file>', 'capture to read (pcap or pcapng)')
    .option('--hex <packet>', 'one whole IP packet in hex')
    .option('--encap-port <n>', 'extra UDP port carrying ESP-in-UDP besides 4500 (repeatable)', (v: string, acc: string[] | undefined) => [
      ...(acc ?? []),
      v,
    ])
    .option('--replay-window <n>', `anti-replay window per SPI (default ${DEFAULT_REPLAY_WINDOW})`)
    .option('--json', 'JSON output (an array, snake_case keys)')
    .action((o: DecodeCliOptions) => {
      if ((o.pcap === undefined) === (o.hex === undefined)) throw new InputError('give exactly one of --pcap FILE or --hex PACKET');
      const encapPorts = (o.encapPort ?? []).map((p) => intOption(p, '--encap-port', 1, 65535));
      const replayWindow =
        o.replayWindow === undefined ? DEFAULT_REPLAY_WINDOW : intOption(o.replayWindow, '--replay-window', MIN_REPLAY_WINDOW, 1 << 20);
      const entries = parseEspSa(readInput(o.keys, '--keys').toString('utf8'));
      let packets: { n: number; ip: Uint8Array }[];
      if (o.hex !== undefined) {
        packets = [{ n: 1, ip: fromHex(o.hex.replace(/\s+/g, ''), '--hex') }];
      } else {
        const cap = unwrap(readCapture(readInput(o.pcap!, '--pcap'))); // its PcapError: exit 2 by code
        if (cap.truncated) process.stderr.write(`imsec: warning: ${o.pcap} ends inside a record; decoded what came before\n`);
        packets = cap.packets.map((p) => ({ n: p.frame, ip: p.ip }));
      }
      const decoded = decodeEspPackets(entries, packets, { encapPorts, replayWindow });
      if (o.json) process.stdout.write(JSON.stringify(decoded.map(jsonRow), null, 2) + '\n');
      else printTable(decoded.map(tableRow), false);
    });
}
