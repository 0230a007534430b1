// pcap writer/reader: header layout, every link type the reader claims, pcapng blocks, round trips
// and fuzz (the reader throws nothing but PcapError). editcap (Wireshark) as an oracle when present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { PcapError } from './errors.ts';
import { buildPcap, LINKTYPE, openPcapWriter, pcapFileHeader, readCapture, readCaptureOrThrow } from './pcap.ts';

const ip4 = (n: number) => Uint8Array.of(0x45, 0, 0, 20 + n, ...new Array<number>(16 + n).fill(n & 0xff));
const ip6 = Uint8Array.of(0x60, 0, 0, 0, 0, 0, 17, 64, ...new Array<number>(32).fill(1));

function classic(linktype: number, frames: Uint8Array[], opts: { big?: boolean; nano?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  const w32 = (b: Buffer, v: number, o: number) => (opts.big ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o));
  w32(h, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  (opts.big ? h.writeUInt16BE.bind(h) : h.writeUInt16LE.bind(h))(2, 4);
  (opts.big ? h.writeUInt16BE.bind(h) : h.writeUInt16LE.bind(h))(4, 6);
  w32(h, 65535, 16);
  w32(h, linktype, 20);
  parts.push(h);
  frames.forEach((f, i) => {
    const r = Buffer.alloc(16);
    w32(r, 1000 + i, 0);
    w32(r, opts.nano ? 5000 : 5, 4);
    w32(r, f.length, 8);
    w32(r, f.length, 12);
    parts.push(r, Buffer.from(f));
  });
  return Buffer.concat(parts);
}

test('writer: file header is magic a1b2c3d4, v2.4, snaplen 65535, LINKTYPE_RAW (101)', () => {
  assert.equal(Buffer.from(pcapFileHeader()).toString('hex'), 'd4c3b2a1020004000000000000000000ffff000065000000');
});

test('writer → reader round trip keeps packets and microsecond timestamps', () => {
  const file = buildPcap([
    { ip: ip4(3), timestampUs: 1_700_000_000_123_456 },
    { ip: ip6, timestampUs: 1_700_000_001_000_001 },
  ]);
  const c = readCaptureOrThrow(file);
  assert.equal(c.format, 'pcap');
  assert.deepEqual(
    c.packets.map((p) => [p.frame, p.timestampUs, p.linktype, Buffer.from(p.ip).toString('hex'), p.partial]),
    [
      [1, 1_700_000_000_123_456, 101, Buffer.from(ip4(3)).toString('hex'), false],
      [2, 1_700_000_001_000_001, 101, Buffer.from(ip6).toString('hex'), false],
    ],
  );
});

test('property: writer → reader round trip for arbitrary IP-looking packets', () => {
  const pkt = fc.tuple(fc.constantFrom(0x45, 0x60), fc.uint8Array({ maxLength: 300 })).map(([v, rest]) => Uint8Array.of(v, ...rest));
  fc.assert(
    fc.property(
      fc.array(fc.record({ ip: pkt, timestampUs: fc.integer({ min: 0, max: 2 ** 32 * 1e6 - 1 }) }), { maxLength: 20 }),
      (pkts) => {
        const c = readCaptureOrThrow(buildPcap(pkts));
        assert.deepEqual(
          c.packets.map((p) => [p.timestampUs, Buffer.from(p.ip)]),
          pkts.map((p) => [p.timestampUs, Buffer.from(p.ip)]),
        );
      },
    ),
  );
});

test('reader: big-endian and nanosecond classic pcap', () => {
  for (const opts of [{ big: true }, { nano: true }, { big: true, nano: true }]) {
    const c = readCaptureOrThrow(classic(101, [ip4(1)], opts));
    assert.equal(c.packets.length, 1, JSON.stringify(opts));
    assert.equal(c.packets[0]!.timestampUs, 1000 * 1e6 + 5);
  }
});

test('reader: link types RAW(12/14/101), IPv4/IPv6 (228/229), Ethernet (+802.1Q), SLL, SLL2, NULL, LOOP', () => {
  const p = ip4(2);
  const eth = (et: number, pre: number[] = []) => Uint8Array.of(...new Array<number>(12).fill(0xaa), ...pre, et >> 8, et & 0xff, ...p);
  const cases: [number, Uint8Array][] = [
    [LINKTYPE.RAW, p],
    [12, p],
    [14, p],
    [LINKTYPE.IPV4, p],
    [LINKTYPE.IPV6, ip6],
    [LINKTYPE.ETHERNET, eth(0x0800)],
    [LINKTYPE.ETHERNET, Uint8Array.of(...new Array<number>(12).fill(0xaa), 0x81, 0x00, 0x00, 0x05, 0x08, 0x00, ...p)],
    [LINKTYPE.LINUX_SLL, Uint8Array.of(0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00, ...p)],
    [LINKTYPE.LINUX_SLL2, Uint8Array.of(0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, ...p)],
    [LINKTYPE.NULL, Uint8Array.of(2, 0, 0, 0, ...p)],
    [LINKTYPE.NULL, Uint8Array.of(0, 0, 0, 2, ...p)],
    [LINKTYPE.LOOP, Uint8Array.of(0, 0, 0, 30, ...ip6)],
  ];
  for (const [lt, frame] of cases) {
    const c = readCaptureOrThrow(classic(lt, [frame]));
    assert.equal(c.packets.length, 1, `linktype ${lt}`);
    const want = lt === LINKTYPE.IPV6 || lt === LINKTYPE.LOOP ? ip6 : p;
    assert.deepEqual(Buffer.from(c.packets[0]!.ip), Buffer.from(want), `linktype ${lt}`);
  }
});

test('reader: non-IP frames are skipped and counted; frame numbers still count them', () => {
  const arp = Uint8Array.of(...new Array<number>(12).fill(0xaa), 0x08, 0x06, 0, 1);
  const c = readCaptureOrThrow(classic(LINKTYPE.ETHERNET, [arp, Uint8Array.of(...new Array<number>(12).fill(0), 0x08, 0, ...ip4(0))]));
  assert.equal(c.skipped, 1);
  assert.deepEqual(
    c.packets.map((p) => p.frame),
    [2],
  );
});

test('reader: a file cut inside a record returns what came before it, flagged truncated', () => {
  const f = buildPcap([
    { ip: ip4(1), timestampUs: 1 },
    { ip: ip4(40), timestampUs: 2 },
  ]);
  const c = readCaptureOrThrow(f.subarray(0, f.length - 10));
  assert.equal(c.truncated, true);
  assert.equal(c.packets.length, 1);
});

test('reader: unknown magic and unsupported link types are PcapErrors with a code', () => {
  assert.throws(
    () => readCaptureOrThrow(Buffer.from('hello world, this is not a capture')),
    (e) => e instanceof PcapError && e.code === 'PCAP_BAD_MAGIC',
  );
  assert.throws(
    () => readCaptureOrThrow(classic(147, [ip4(1)])),
    (e) => e instanceof PcapError && e.code === 'PCAP_UNSUPPORTED_LINKTYPE',
  );
});

function pcapng(big: boolean): Buffer {
  const w = (n: number, v: number) => {
    const b = Buffer.alloc(n);
    if (n === 2) big ? b.writeUInt16BE(v) : b.writeUInt16LE(v);
    else big ? b.writeUInt32BE(v) : b.writeUInt32LE(v);
    return b;
  };
  const block = (type: number, body: Buffer) => {
    const len = 12 + body.length;
    return Buffer.concat([w(4, type), w(4, len), body, w(4, len)]);
  };
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  const shb = block(0x0a0d0d0a, Buffer.concat([w(4, 0x1a2b3c4d), w(2, 1), w(2, 0), Buffer.alloc(8, 0xff)]));
  // IDB: LINKTYPE_ETHERNET, snaplen 0, option if_tsresol = 9 (nanoseconds), end of options.
  const idb = block(1, Buffer.concat([w(2, 1), w(2, 0), w(4, 0), w(2, 9), w(2, 1), Buffer.from([9, 0, 0, 0]), w(2, 0), w(2, 0)]));
  const frame = Buffer.from([...new Array<number>(12).fill(0), 0x86, 0xdd, ...ip6]);
  const ts = 1_700_000_000_000_000_123n * 1n; // ns
  const epb = block(
    6,
    Buffer.concat([w(4, 0), w(4, Number(ts >> 32n)), w(4, Number(ts & 0xffffffffn)), w(4, frame.length), w(4, frame.length), pad(frame)]),
  );
  const spb = block(3, Buffer.concat([w(4, frame.length), pad(frame)]));
  const nrb = block(4, Buffer.alloc(4));
  return Buffer.concat([shb, idb, nrb, epb, spb]);
}

test('reader: pcapng SHB/IDB/EPB/SPB in both byte orders, if_tsresol in nanoseconds', () => {
  for (const big of [false, true]) {
    const c = readCaptureOrThrow(pcapng(big));
    assert.equal(c.format, 'pcapng');
    assert.equal(c.packets.length, 2);
    assert.equal(c.packets[0]!.timestampUs, 1_700_000_000_000_000);
    assert.equal(c.packets[1]!.timestampUs, undefined);
    assert.deepEqual(Buffer.from(c.packets[1]!.ip), Buffer.from(ip6));
  }
});

test('fuzz: the reader returns or throws PcapError on arbitrary and on mutated input', () => {
  const valid = [
    buildPcap([
      { ip: ip4(5), timestampUs: 7 },
      { ip: ip6, timestampUs: 8 },
    ]),
    pcapng(false),
    pcapng(true),
    classic(1, [ip4(3)], { big: true }),
  ];
  const mutated = fc
    .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
    .map(([v, flips, cut]) => {
      const b = Buffer.from(v);
      for (const [i, x] of flips) b[i % b.length] = x;
      return b.subarray(0, cut % (b.length + 1));
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated), (bytes) => {
      try {
        readCaptureOrThrow(bytes);
      } catch (e) {
        if (!(e instanceof PcapError)) throw e;
      }
    }),
    { numRuns: 3000 },
  );
});

test('file writer streams records; editcap converts it to pcapng and the reader agrees', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-pcap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'a.pcap');
  const w = openPcapWriter(path, { nowUs: () => 42_000_000 });
  w.write(ip4(1));
  w.write(ip6, 43_000_001);
  w.close();
  const c = readCaptureOrThrow(readFileSync(path));
  assert.deepEqual(
    c.packets.map((p) => p.timestampUs),
    [42_000_000, 43_000_001],
  );
  if (spawnSync('editcap', ['-h']).error) return t.skip('editcap not installed: pcapng cross-check skipped');
  execFileSync('editcap', ['-F', 'pcapng', path, join(dir, 'a.pcapng')]);
  const n = readCaptureOrThrow(readFileSync(join(dir, 'a.pcapng')));
  assert.equal(n.format, 'pcapng');
  assert.deepEqual(
    n.packets.map((p) => [p.timestampUs, Buffer.from(p.ip)]),
    c.packets.map((p) => [p.timestampUs, Buffer.from(p.ip)]),
  );
});

test('issue 12 §4: readCapture returns a result; a bad file is a PcapError with a code, never a throw', () => {
  const r = readCapture(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'PCAP_MALFORMED'); // 8 octets: shorter than a pcap file header
});
