// Test fixtures shared by the SA/SAD tests, the esp CLI tests and the interop suites: TS 35.208
// Set 1 CK/IK, a UE-side and a P-CSCF-side SA set that mirror each other (spec digest §6.2),
// SIP-looking payloads, and a deterministic traffic run over all four SAs.
import { readFileSync } from 'node:fs';
import { fromHex } from '../../src/util/bytes.ts';
import type { EncryptionAlg, IntegrityAlg } from '../../src/ipsec/algorithms.ts';
import { expandKeys } from '../../src/ipsec/keys.ts';
import { createSaSet, type SaSet, type SaSetConfig } from '../../src/ipsec/sa-set.ts';
import { Sad } from '../../src/ipsec/sad.ts';
import { buildIpPacket, buildUdp, parseWire } from '../../src/ipsec/esp/index.ts';
import type { EspMode } from '../../src/ipsec/types.ts';

const set1 = (
  JSON.parse(readFileSync(new URL('../../src/aka/testdata/ts35208.json', import.meta.url), 'utf8')) as {
    set: number;
    f3: string;
    f4: string;
  }[]
).find((s) => s.set === 1)!;
/** TS 35.208 Test Set 1: CK = f3, IK = f4. */
export const SET1_CK = fromHex(set1.f3);
export const SET1_IK = fromHex(set1.f4);

export interface PairOptions {
  alg: IntegrityAlg;
  ealg: EncryptionAlg;
  mode: EspMode;
  v6?: boolean;
  /** Distinguishes several pairs in one capture: shifts SPIs and client ports. */
  index?: number;
  encap?: { uePort: number; pcscfPort: number };
  ueInnerIp?: string;
  replayWindow?: number;
}

export const UE_IP4 = '192.0.2.10';
export const PCSCF_IP4 = '192.0.2.20';
export const UE_IP6 = '2001:db8::10';
export const PCSCF_IP6 = '2001:db8::20';

/** The shared configuration of a registration; `role` is filled in by makePair. */
export function pairConfig(o: PairOptions): Omit<SaSetConfig, 'role'> {
  const i = o.index ?? 0;
  const base = 0x10000 + i * 0x100;
  return {
    ue: {
      ip: o.v6 ? UE_IP6 : UE_IP4,
      portC: 50000 + 2 * i,
      portS: 50001 + 2 * i,
      spiC: base + 1,
      spiS: base + 2,
      ...(o.ueInnerIp ? { innerIp: o.ueInnerIp } : {}),
    },
    pcscf: { ip: o.v6 ? PCSCF_IP6 : PCSCF_IP4, portC: 5062, portS: 5064, spiC: base + 3, spiS: base + 4 },
    alg: o.alg,
    ealg: o.ealg,
    keys: expandKeys(SET1_IK, SET1_CK, o.alg, o.ealg),
    mode: o.mode,
    ...(o.encap ? { encap: o.encap } : {}),
    ...(o.replayWindow ? { replayWindow: o.replayWindow } : {}),
  };
}

/** The UE's and the P-CSCF's view of the same four SAs. */
export function makePair(o: PairOptions): { ue: SaSet; pcscf: SaSet } {
  const c = pairConfig(o);
  return { ue: createSaSet({ ...c, role: 'ue' }), pcscf: createSaSet({ ...c, role: 'pcscf' }) };
}

const enc = (s: string) => new TextEncoder().encode(s.replace(/\n/g, '\r\n'));

export function sipRequest(method: string, n: number): Uint8Array {
  return enc(
    `${method} sip:ims.example.net SIP/2.0\nVia: SIP/2.0/UDP ue.ims.example.net:50001;branch=z9hG4bK${n}\nMax-Forwards: 70\n` +
      `From: <sip:alice@ims.example.net>;tag=${n}\nTo: <sip:alice@ims.example.net>\nCall-ID: imsec-${n}\nCSeq: ${n} ${method}\nContent-Length: 0\n\n`,
  );
}

export function sipResponse(n: number): Uint8Array {
  return enc(
    `SIP/2.0 200 OK\nVia: SIP/2.0/UDP pcscf.ims.example.net:5062;branch=z9hG4bK${n}\nCall-ID: imsec-${n}\nCSeq: ${n} NOTIFY\nContent-Length: 0\n\n`,
  );
}

export interface SentPacket {
  ip: Uint8Array;
  /** Which side sent it, over which SA, and what the receiver must see. */
  from: 'ue' | 'pcscf';
  saName: 'SA1' | 'SA2' | 'SA3' | 'SA4';
  spi: number;
  seq: number;
  payload: Uint8Array;
  method?: string;
  status?: number;
}

/**
 * Five datagrams over the four SAs of a pair: REGISTER ×2 on SA1 (uc→ps), NOTIFY on SA2 (pc→us),
 * 200 OK on SA3 (ps→uc) and SA4 (us→pc). Uses each side's SAD.send, as a backend would.
 */
export function exchange(pair: { ue: SaSet; pcscf: SaSet }, n: number, sads = { ue: new Sad(), pcscf: new Sad() }): SentPacket[] {
  const { ue, pcscf } = pair;
  const c = ue.config;
  const out: SentPacket[] = [];
  const send = (
    from: 'ue' | 'pcscf',
    srcPort: number,
    dstPort: number,
    payload: Uint8Array,
    extra: { method?: string; status?: number },
  ) => {
    const r = sads[from].send(from === 'ue' ? ue : pcscf, srcPort, dstPort, payload);
    out.push({ ip: r.ip, from, saName: r.sa.name, spi: r.sa.spi, seq: r.sa.seq, payload, ...extra });
  };
  send('ue', c.ue.portC, c.pcscf.portS, sipRequest('REGISTER', n), { method: 'REGISTER' });
  send('ue', c.ue.portC, c.pcscf.portS, sipRequest('REGISTER', n + 1), { method: 'REGISTER' });
  send('pcscf', c.pcscf.portC, c.ue.portS, sipRequest('NOTIFY', n + 2), { method: 'NOTIFY' });
  send('pcscf', c.pcscf.portS, c.ue.portC, sipResponse(n + 3), { status: 200 });
  send('ue', c.ue.portS, c.pcscf.portC, sipResponse(n + 4), { status: 200 });
  return out;
}

/**
 * Flips one octet of the ESP packet inside `ip` (`at` counts from the start of ESP; default: the
 * middle, inside the payload, so the trailer stays intact) and rebuilds the outer headers with
 * valid checksums, as an on-path attacker would: only the ESP ICV can catch it.
 */
export function tamperEsp(ip: Uint8Array, at?: number): Uint8Array {
  const w = parseWire(ip, { encapPorts: [4500, 5100, 5200] });
  if (w.kind !== 'esp') throw new Error(`tamperEsp: not an ESP packet (${w.kind})`);
  const esp = new Uint8Array(w.esp);
  esp[at ?? esp.length >> 1]! ^= 0x01;
  if (!w.encap) return buildIpPacket({ src: w.src, dst: w.dst, protocol: 50, payload: esp });
  const udp = buildUdp(w.src, w.dst, w.encap.srcPort, w.encap.dstPort, esp, { zeroChecksum: !w.src.includes(':') });
  return buildIpPacket({ src: w.src, dst: w.dst, protocol: 17, payload: udp });
}

/** A copy of an IP packet with one octet flipped `fromEnd` octets before its end (inside the ESP ciphertext/ICV). */
export function tamper(ip: Uint8Array, fromEnd = 20): Uint8Array {
  const t = new Uint8Array(ip); // not ip.slice(): on a Buffer that is a view, not a copy
  t[t.length - fromEnd]! ^= 0x01;
  return t;
}
