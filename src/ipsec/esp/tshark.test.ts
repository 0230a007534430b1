// Independent cross-check with Wireshark: our packets go into a pcap and tshark (4.0 here)
// verifies IPv4 header and UDP checksums, decrypts every ESP packet with the keys and checks its
// ICV, and shows the inner payload. Skips (saying so) when tshark is not installed.
// Wireshark 4.0 has no AES-GMAC for ESP, so aes-gmac relies on the RFC 4543 vector in transforms/.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { EncryptionAlg, IntegrityAlg } from '../algorithms.ts';
import { expandKeys } from '../keys.ts';
import type { SaParams } from '../types.ts';
import { buildIpPacket, buildUdp, createOutbound, sealToWire } from './index.ts';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

const ENC: Record<EncryptionAlg, string> = {
  null: 'NULL',
  'aes-cbc': 'AES-CBC [RFC3602]',
  'des-ede3-cbc': 'TripleDES-CBC [RFC2451]',
  'aes-gcm': 'AES-GCM with 16 octet ICV [RFC4106]',
};
const AUTH: Partial<Record<IntegrityAlg, string>> = {
  null: 'NULL',
  'hmac-md5-96': 'HMAC-MD5-96 [RFC2403]',
  'hmac-sha-1-96': 'HMAC-SHA-1-96 [RFC2404]',
};

/** pcap (LINKTYPE_RAW = 101: each record is an IP packet). */
function pcap(pkts: Uint8Array[]): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(65535, 16);
  h.writeUInt32LE(101, 20);
  const parts = [h];
  pkts.forEach((p, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1_700_000_000 + i, 0);
    r.writeUInt32LE(p.length, 8);
    r.writeUInt32LE(p.length, 12);
    parts.push(r, Buffer.from(p));
  });
  return Buffer.concat(parts);
}

const hex = (b: Uint8Array): string => (b.length ? `0x${Buffer.from(b).toString('hex')}` : '');

describe('tshark cross-check', { skip: hasTshark ? false : 'tshark not installed' }, () => {
  it('checksums are good, every ESP packet decrypts with a good ICV and the expected payload', () => {
    const ik = randomBytes(16);
    const ck = randomBytes(16);
    const pkts: Uint8Array[] = [];
    const expect: { frame: number; spi?: number; payload: string }[] = [];
    const uat: string[] = [];
    const hi = Buffer.from('plain udp');
    for (const [s, d] of [
      ['192.0.2.1', '192.0.2.2'],
      ['2001:db8::1', '2001:db8::2'],
    ]) {
      pkts.push(buildIpPacket({ src: s!, dst: d!, protocol: 17, payload: buildUdp(s!, d!, 5100, 5102, hi) }));
      expect.push({ frame: pkts.length, payload: hi.toString('hex') });
    }
    const pairs: [IntegrityAlg, EncryptionAlg][] = [
      ['hmac-sha-1-96', 'aes-cbc'],
      ['hmac-md5-96', 'des-ede3-cbc'],
      ['hmac-sha-1-96', 'null'],
      ['hmac-md5-96', 'aes-cbc'],
      ['null', 'aes-gcm'],
    ];
    const setups: { mode: SaParams['mode']; src: string; dst: string; inner?: [string, string] }[] = [
      { mode: 'transport', src: '192.0.2.1', dst: '192.0.2.2' },
      { mode: 'transport', src: '2001:db8::1', dst: '2001:db8::2' },
      { mode: 'udp-enc-tunnel', src: '198.51.100.7', dst: '192.0.2.2', inner: ['10.0.0.5', '192.0.2.2'] },
      { mode: 'udp-enc-tunnel', src: '2001:db8::7', dst: '2001:db8::2', inner: ['fd00::5', '2001:db8::2'] },
    ];
    let spi = 0x1000;
    for (const [alg, ealg] of pairs) {
      for (const st of setups) {
        spi++;
        const keys = expandKeys(ik, ck, alg, ealg);
        const sa: SaParams = {
          spi,
          src: st.src,
          dst: st.dst,
          srcPort: 5100,
          dstPort: 5102,
          mode: st.mode,
          alg,
          ealg,
          keys,
          ...(st.inner ? { innerSrc: st.inner[0], innerDst: st.inner[1] } : {}),
        };
        const encKey = keys.salt && ealg === 'aes-gcm' ? Buffer.concat([keys.ckEsp, keys.salt]) : keys.ckEsp;
        const fam = st.src.includes(':') ? 'IPv6' : 'IPv4';
        uat.push(
          `"${fam}","${st.src}","${st.dst}","0x${spi.toString(16).padStart(8, '0')}","${ENC[ealg]}","${hex(encKey)}","${AUTH[alg]}","${hex(keys.ikEsp)}"`,
        );
        const out = createOutbound(sa);
        for (let i = 0; i < 3; i++) {
          const payload = randomBytes(5 + 17 * i); // several packets: CBC chaining across packets
          pkts.push(sealToWire(sa, out, { srcPort: 5100, dstPort: 5102, payload }).ip);
          expect.push({ frame: pkts.length, spi, payload: payload.toString('hex') });
        }
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'imsec-esp-'));
    try {
      const file = join(dir, 'esp.pcap');
      writeFileSync(file, pcap(pkts));
      const args = [
        '-r',
        file,
        '-o',
        'esp.enable_encryption_decode:TRUE',
        '-o',
        'esp.enable_authentication_check:TRUE',
        '-o',
        'ip.check_checksum:TRUE',
        '-o',
        'udp.check_checksum:TRUE',
      ];
      for (const u of uat) args.push('-o', `uat:esp_sa:${u}`);
      args.push(
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'frame.number',
        '-e',
        'ip.checksum.status',
        '-e',
        'udp.checksum.status',
        '-e',
        'esp.spi',
        '-e',
        'esp.icv_good',
        '-e',
        'udp.dstport',
        '-e',
        'data.data',
      );
      const lines = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n');
      assert.equal(lines.length, expect.length);
      for (const e of expect) {
        const [frame, ipStatus, udpStatus, espSpi, icvGood, dport, data] = lines[e.frame - 1]!.split('|');
        const what = `frame ${frame} spi ${e.spi?.toString(16)}`;
        for (const st of ipStatus!.split(',').filter(Boolean)) assert.equal(st, '1', `${what}: IPv4 header checksum`);
        // Outer IPv4 UDP in tunnel mode carries checksum 0 (status 2, unverified); every other is good.
        const udp = udpStatus!.split(',');
        assert.equal(udp[udp.length - 1], '1', `${what}: inner/plain UDP checksum`);
        if (e.spi !== undefined) {
          assert.equal(parseInt(espSpi!, 16), e.spi, what);
          assert.equal(icvGood, '1', `${what}: ICV (for GCM: the tag)`);
        }
        assert.equal(dport!.split(',').pop(), '5102', what);
        assert.equal(data, e.payload, `${what}: decrypted payload`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
