// `imsec esp decode` end to end (spawning bin/imsec.mjs): verdicts for good, tampered, replayed,
// unknown-SPI, keepalive, dummy and badly padded packets; pcap and --hex input; exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../util/bytes.ts';
import { buildIpPacket, buildUdp, NAT_KEEPALIVE } from '../ipsec/esp/index.ts';
import { espSaLines } from '../ipsec/key-export.ts';
import { buildPcap } from '../ipsec/pcap.ts';
import { craftNullSha1Esp, espInIp } from '../../test/support/esp-craft.ts';
import { exchange, makePair, tamper } from '../../test/support/ims-fixture.ts';

const BIN = new URL('../../bin/imsec.mjs', import.meta.url).pathname;

function imsec(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'esp', 'decode', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-esp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const pcapOf = (ips: Uint8Array[]) => buildPcap(ips.map((ip, i) => ({ ip, timestampUs: 1_700_000_000_000_000 + i })));

test('decode: ok, icv_failure, replay, unknown_spi, keepalive, dummy, bad_padding, not_esp in one capture (--json)', (t) => {
  const dir = tmp(t);
  const pair = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' });
  const other = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport', index: 5 });
  const [reg1, reg2, notify] = exchange(pair, 1);
  const [foreign] = exchange(other, 1);
  const ik = pair.ue.sas.SA1.params.keys.ikEsp;
  const udp = buildUdp('192.0.2.10', '192.0.2.20', 50000, 5064, new TextEncoder().encode('x'));
  const dummy = espInIp('192.0.2.10', '192.0.2.20', craftNullSha1Esp({ spi: 0x10004, seq: 10, payload: udp, nextHeader: 59, ikEsp: ik }));
  const badPad = espInIp(
    '192.0.2.10',
    '192.0.2.20',
    craftNullSha1Esp({ spi: 0x10004, seq: 11, payload: udp, nextHeader: 17, pad: [9, 9, 9, 9, 9], ikEsp: ik }),
  );
  const keepalive = buildIpPacket({
    src: '192.0.2.10',
    dst: '192.0.2.20',
    protocol: 17,
    payload: buildUdp('192.0.2.10', '192.0.2.20', 4500, 4500, NAT_KEEPALIVE),
  });
  const plainSip = buildIpPacket({ src: '192.0.2.10', dst: '192.0.2.20', protocol: 17, payload: udp });
  // Tampered copy of seq 2 comes first, so it fails on the ICV rather than on the replay check.
  const frames = [tamper(reg2!.ip), reg1!.ip, reg2!.ip, reg1!.ip, foreign!.ip, keepalive, dummy, badPad, plainSip, notify!.ip];
  writeFileSync(join(dir, 'c.pcap'), pcapOf(frames));
  writeFileSync(join(dir, 'esp_sa'), espSaLines(pair.ue).join('\n'));
  const r = imsec(['--keys', join(dir, 'esp_sa'), '--pcap', join(dir, 'c.pcap'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.deepEqual(
    rows.map((x) => [x.n, x.spi, x.seq, x.verdict]),
    [
      [1, '0x00010004', 2, 'icv_failure'],
      [2, '0x00010004', 1, 'ok'],
      [3, '0x00010004', 2, 'ok'],
      [4, '0x00010004', 1, 'replay'],
      [5, '0x00010504', 1, 'unknown_spi'],
      [6, undefined, undefined, 'keepalive'],
      [7, '0x00010004', 10, 'dummy'],
      [8, '0x00010004', 11, 'bad_padding'],
      [9, undefined, undefined, 'not_esp'],
      [10, '0x00010002', 1, 'ok'],
    ],
  );
  assert.deepEqual([rows[1]!.protocol, rows[1]!.src_port, rows[1]!.dst_port], ['udp', 50000, 5064]);
  assert.match(String(rows[1]!.payload_text), /^REGISTER sip:ims\.example\.net SIP\/2\.0\r\n/);
  assert.match(String(rows[9]!.payload_text), /^NOTIFY /);
});

test('decode: human table for udp-enc-tunnel with an extra encapsulation port (--encap-port)', (t) => {
  const dir = tmp(t);
  const pair = makePair({ alg: 'null', ealg: 'aes-gcm', mode: 'udp-enc-tunnel', v6: true, encap: { uePort: 5100, pcscfPort: 5200 } });
  const pk = exchange(pair, 1);
  writeFileSync(join(dir, 'c.pcap'), pcapOf(pk.map((p) => p.ip)));
  writeFileSync(join(dir, 'esp_sa'), espSaLines(pair.pcscf).join('\n'));
  const without = imsec(['--keys', join(dir, 'esp_sa'), '--pcap', join(dir, 'c.pcap'), '--json']);
  assert.deepEqual(
    (JSON.parse(without.stdout) as { verdict: string }[]).map((x) => x.verdict),
    Array(5).fill('not_esp'),
  );
  const r = imsec(['--keys', join(dir, 'esp_sa'), '--pcap', join(dir, 'c.pcap'), '--encap-port', '5200']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^n\s+spi\s+seq\s+verdict\s+proto\s+ports\s+payload$/);
  assert.match(lines[1]!, /^1\s+0x00010004\s+1\s+ok\s+udp\s+50000->5064\s+REGISTER sip:ims\.example\.net SIP\/2\.0$/);
  assert.match(lines[4]!, /^4\s+0x00010001\s+1\s+ok\s+udp\s+5064->50000\s+SIP\/2\.0 200 OK$/);
});

test('decode --hex: one IP packet; aes-gmac keys come from the #imsec-only line', (t) => {
  const dir = tmp(t);
  const pair = makePair({ alg: 'aes-gmac', ealg: 'null', mode: 'transport' });
  const [reg] = exchange(pair, 1);
  writeFileSync(join(dir, 'esp_sa'), espSaLines(pair.ue).join('\n'));
  const r = imsec(['--keys', join(dir, 'esp_sa'), '--hex', toHex(reg!.ip), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const [row] = JSON.parse(r.stdout) as Record<string, unknown>[];
  assert.deepEqual([row!.n, row!.verdict, row!.spi], [1, 'ok', '0x00010004']);
});

test('decode: unreadable input exits 2 with a message (missing file, bad esp_sa, not a capture, bad options)', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'good_sa'), '"IPv4","*","*","*","NULL","","HMAC-MD5-96 [RFC2403]","0x00112233445566778899aabbccddeeff"\n');
  writeFileSync(join(dir, 'bad_sa'), '"IPv4","*","*","*","ROT13","","NULL",""\n');
  writeFileSync(join(dir, 'junk.pcap'), 'this is not a capture file at all');
  const cases: [string[], RegExp][] = [
    [['--keys', join(dir, 'nope'), '--hex', '00'], /--keys: cannot read .*ENOENT/],
    [['--keys', join(dir, 'bad_sa'), '--hex', '4500'], /esp_sa line 1: unsupported encryption/],
    [['--keys', join(dir, 'good_sa'), '--pcap', join(dir, 'junk.pcap')], /unknown magic/],
    [['--keys', join(dir, 'good_sa'), '--hex', 'xyz'], /--hex: not a/],
    [['--keys', join(dir, 'good_sa')], /exactly one of --pcap FILE or --hex PACKET/],
    [['--keys', join(dir, 'good_sa'), '--hex', '45', '--replay-window', '8'], /--replay-window: must be an integer 32\.\./],
  ];
  for (const [args, msg] of cases) {
    const r = imsec(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});
