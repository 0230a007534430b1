// SipHeaders' set/get/getAll/clone against a naive model, and validation's per-line parse cache against fresh parses (one array of lines, RFC 3261 §7.3.1
// splitting by splitTopLevel): the fast paths (one value over at most one line replaced in place,
// a value without a comma read without splitting) must give exactly what the general path gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SipHeaders, SipRequest, SipResponse, canonicalHeaderName, isListHeader } from './message.ts';
import { splitTopLevel } from './_syntax.ts';
import { parseMessageOrThrow } from './parser.ts';
import { serializeMessage } from './serializer.ts';
import { rememberViaLine, toUri, topVia, validateRequest } from './validate.ts';
import { parseNameAddr } from './name-addr.ts';
import { formatVia, parseViaOrThrow, stampVia } from './via.ts';

type Line = [string, string];
const NAMES = ['Supported', 'supported', 'k', 'Max-Forwards', 'Via', 'v', 'Route', 'X-Custom', 'Authorization', 'To'];
const name = fc.constantFrom(...NAMES);
const value = fc.constantFrom('a', ' b ', 'c, d', '<sip:x;a=1,2>, e', '"q, r"', ' ', '', ',', 'f ,  ', 'Digest a=1, b=2');
const lines = fc.array(fc.tuple(name, value), { maxLength: 8 });

const lower = (n: string) => canonicalHeaderName(n).toLowerCase();

/** The naive model: the general path, written out. */
function modelSet(ls: Line[], n: string, v: string | string[]): Line[] {
  const vs = typeof v === 'string' ? [v] : v;
  const at = ls.findIndex(([x]) => lower(x) === lower(n));
  const rest = ls.filter(([x]) => lower(x) !== lower(n));
  const added: Line[] = vs.map((x) => [canonicalHeaderName(n), x]);
  const pos = at < 0 ? rest.length : at;
  return [...rest.slice(0, pos), ...added, ...rest.slice(pos)];
}
function modelGetAll(ls: Line[], n: string): string[] {
  const vals = ls.filter(([x]) => lower(x) === lower(n)).map(([, v]) => v);
  return isListHeader(n) ? vals.flatMap(splitTopLevel) : vals;
}
function modelGet(ls: Line[], n: string): string | undefined {
  for (const [x, v] of ls) {
    if (lower(x) !== lower(n)) continue;
    if (!isListHeader(n)) return v;
    const first = splitTopLevel(v)[0];
    if (first !== undefined) return first;
  }
  return undefined;
}
const shown = (h: SipHeaders): Line[] => h.entries().map((f) => [f.name, f.value]);
const canon = (ls: Line[]): Line[] => ls.map(([n, v]) => [canonicalHeaderName(n), v]);

test('SipHeaders set/get/getAll agree with the naive model (one value or several, 0, 1 or more lines)', () => {
  fc.assert(
    fc.property(lines, name, fc.oneof(value, fc.array(value, { maxLength: 3 })), name, (ls, n, v, probe) => {
      const h = new SipHeaders(ls);
      assert.deepEqual(h.get(probe), modelGet(canon(ls), probe));
      assert.deepEqual(h.getAll(probe), modelGetAll(canon(ls), probe));
      const c = h.clone();
      h.set(n, v);
      const want = modelSet(canon(ls), n, v);
      assert.deepEqual(shown(h), want);
      assert.deepEqual(h.get(probe), modelGet(want, probe));
      assert.deepEqual(h.getAll(probe), modelGetAll(want, probe));
      // The clone taken before is untouched by the set.
      assert.deepEqual(shown(c), canon(ls));
    }),
    { numRuns: 500 },
  );
});

test('set with CR/LF in the value throws and leaves the lines as they were', () => {
  const h = new SipHeaders([['Max-Forwards', '70']]);
  assert.throws(() => h.set('Max-Forwards', '69\r\nX-Evil: 1'));
  assert.deepEqual(shown(h), [['Max-Forwards', '70']]);
});

test('a clone copies a body (an empty one may be shared: it cannot be written)', () => {
  const body = new TextEncoder().encode('v=0');
  const req = new SipRequest('MESSAGE', 'sip:a@b', new SipHeaders(), body);
  const c = req.clone();
  assert.notEqual(c.body, req.body);
  c.body[0] = 0x41;
  assert.equal(req.body[0], 0x76);
  const res = new SipResponse(200, 'OK');
  assert.equal(res.clone().body.length, 0);
  assert.equal(new SipRequest('REGISTER', 'sip:b').clone().body.length, 0);
});

// Validation keeps each line's parse on the line (shared by clones): the info of a forwarded copy
// must be exactly what a fresh parse of its bytes gives, whatever lines it kept, lost or changed.
const VIA_TEXTS = [
  'SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK1x2;rport',
  'SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKa, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKb;received=192.0.2.1',
  'sip / 2.0 / udp   ue.example:5060 ; branch = z9hG4bKc ; rport',
];
const FROMS = ['<sip:alice@ims.example>;tag=f1', '"A, B" <sip:a@b;lr>;tag=x', 'sip:bob@example.net;tag=2'];
const TOS = ['<sip:alice@ims.example>', 'tel:+15551234567;tag=t', '<sip:c@d>'];
const edit = fc.record({
  via: fc.constantFrom(...VIA_TEXTS),
  from: fc.constantFrom(...FROMS),
  to: fc.constantFrom(...TOS),
  push: fc.boolean(),
  pop: fc.boolean(),
  newTo: fc.option(fc.constantFrom(...TOS), { nil: undefined }),
  cseq: fc.option(fc.constantFrom('7 REGISTER', '8 REGISTER'), { nil: undefined }),
  source: fc.constantFrom({ address: '203.0.113.9', port: 40000 }, { address: '2001:db8::7', port: 5060 }),
});

test('a validated message edited and validated again gives the info of a fresh parse of its bytes (the per-line parse cache)', () => {
  fc.assert(
    fc.property(edit, (e) => {
      const text = `REGISTER sip:ims.example SIP/2.0\r\nVia: ${e.via}\r\nFrom: ${e.from}\r\nTo: ${e.to}\r\nCall-ID: c1\r\nCSeq: 7 REGISTER\r\nMax-Forwards: 70\r\n\r\n`;
      const req = parseMessageOrThrow(new TextEncoder().encode(text)) as SipRequest;
      const first = validateRequest(req);
      assert.ok(first.ok);
      // As the transaction layer does: the top Via stamped, its parse remembered.
      const stamped = stampVia(first.info.vias[0]!, e.source);
      req.headers.replaceFirst('Via', formatVia(stamped));
      const line = req.headers.entries().find((f) => f.name === 'Via')!;
      if (!line.value.includes(',')) rememberViaLine(line, stamped);
      const copy = req.clone();
      if (e.push) copy.headers.prepend('Via', 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKp;rport');
      if (e.pop) copy.headers.removeFirst('Via');
      if (e.newTo) copy.headers.set('To', e.newTo);
      if (e.cseq) copy.headers.set('CSeq', e.cseq);
      for (const m of [req, copy]) {
        const again = validateRequest(m);
        const fresh = validateRequest(parseMessageOrThrow(serializeMessage(m)) as SipRequest);
        assert.deepEqual(again, fresh);
        // The P-CSCF's readers of the kept parses give what parsing the text again gives.
        const to = parseNameAddr(m.headers.get('To') ?? '');
        assert.equal(toUri(m), to.ok ? to.value.uri : undefined);
        if (m.headers.has('Via')) assert.deepEqual(topVia(m), parseViaOrThrow(m.headers.get('Via')!));
        else assert.throws(() => topVia(m), TypeError);
      }
    }),
    { numRuns: 300 },
  );
});
