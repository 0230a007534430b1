// Properties of the per-message fast paths (issue 9 §2, CPU per registration): each rewritten step
// gives what the straightforward version it replaced gives, on generated input. The reference
// versions are written here as they stood before (closures, find/map/join, split/filter).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SipParseError, show } from './errors.ts';
import { SipHeaders, SipRequest, canonicalHeaderName } from './message.ts';
import { Params, type Param } from './params.ts';
import { parseMessage } from './parser.ts';
import { parseUri } from './uri.ts';
import { formatVia, parseVia, stampVia, type Via } from './via.ts';
import { bytes } from './_test-helpers.ts';

const tok = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789-.!%*_+~'), minLength: 1, maxLength: 8 });
const paramName = fc.oneof(tok, fc.constantFrom('rport', 'RPort', 'received', 'Received', 'branch', 'maddr'));
const params = fc.array(fc.tuple(paramName, fc.option(tok, { nil: null })), { maxLength: 5 });

/** stampVia as it was: flatMap over the items, Object.assign for the copy. */
function stampViaReference(v: Via, source: { address: string; port: number }): Via {
  const key = (n: string) => n.toLowerCase();
  if (v.params.items.find((p) => key(p.name) === 'rport')?.value === null) {
    const items = v.params.items.flatMap((p): Param[] => {
      if (key(p.name) === 'received') return [];
      if (key(p.name) !== 'rport') return [p];
      return [
        { name: 'received', value: source.address },
        { name: p.name, value: String(source.port) },
      ];
    });
    return Object.assign({}, v, { params: new Params(items) });
  }
  if (v.host.toLowerCase() === source.address.toLowerCase()) return v;
  return Object.assign({}, v, { params: v.params.clone().set('received', source.address) });
}

const viaArb: fc.Arbitrary<Via> = fc
  .record({
    host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('ue.example', '192.0.2.10')),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    params,
  })
  .map(({ host, port, params }) =>
    parseVia(
      `SIP/2.0/UDP ${host.includes(':') ? `[${host}]` : host}${port === undefined ? '' : `:${port}`}${params
        .map(([n, v]) => (v === null ? `;${n}` : `;${n}=${v}`))
        .join('')}`,
    ),
  )
  .filter((r) => r.ok) // a generated rport value that is not a port
  .map((r) => (r.ok ? r.value : assert.fail()));
const sourceArb = fc.record({
  address: fc.oneof(fc.ipV4(), fc.constantFrom('192.0.2.10', '2001:db8::1')),
  port: fc.integer({ min: 1, max: 65535 }),
});

test('stampVia equals the flatMap/Object.assign version it replaced, object and text', () => {
  fc.assert(
    fc.property(viaArb, sourceArb, (v, source) => {
      const mine = stampVia(v, source);
      const ref = stampViaReference(v, source);
      assert.deepEqual(mine, ref);
      assert.equal(formatVia(mine), formatVia(ref));
      assert.equal(mine === v, ref === v);
    }),
  );
});

test('Params.get and toString equal the find and map/join versions they replaced', () => {
  fc.assert(
    fc.property(params, paramName, (items, name) => {
      const p = new Params(items.map(([n, v]) => ({ name: n, value: v })));
      const key = name.toLowerCase();
      assert.equal(p.get(name), p.items.find((x) => x.name.toLowerCase() === key)?.value);
      assert.equal(p.toString(), p.items.map((x) => (x.value === null ? `;${x.name}` : `;${x.name}=${x.value}`)).join(''));
    }),
  );
});

test('new Params(items) copies; new Params(items, true) takes the array over', () => {
  const items: Param[] = [{ name: 'lr', value: null }];
  assert.notEqual(new Params(items).items, items);
  assert.equal(new Params(items, true).items, items);
});

const headerLine = fc.tuple(fc.constantFrom('Via', 'v', 'Route', 'To', 'X-A'), fc.constantFrom('a', 'b, c', 'd;x=",", e', ' ', '<f,g>'));

test('replaceFirst gives the values removeFirst + prepend gave, and leaves other headers in their order', () => {
  fc.assert(
    fc.property(fc.array(headerLine, { maxLength: 8 }), fc.constantFrom('Via', 'Route', 'To'), tok, (lines, name, value) => {
      const a = new SipHeaders(lines);
      const b = new SipHeaders(lines);
      a.replaceFirst(name, value);
      b.removeFirst(name);
      b.prepend(name, value);
      assert.deepEqual(a.getAll(name), b.getAll(name));
      const others = (h: SipHeaders) => h.entries().filter((f) => f.name.toLowerCase() !== name.toLowerCase());
      assert.deepEqual(others(a), others(b));
    }),
  );
});

test('a request line cut at its two spaces parses as split/filter did, errors included', () => {
  const piece = fc.constantFrom('REGISTER', 'sip:ims.example', 'SIP/2.0', 'sip:a@b;lr', 'x', '');
  const gap = fc.constantFrom(' ', '  ', '', '\t');
  fc.assert(
    fc.property(fc.array(fc.tuple(gap, piece), { minLength: 1, maxLength: 5 }), gap, (parts, tail) => {
      const line = parts.map(([g, p], i) => (i === 0 ? p : g + p)).join('') + tail;
      if (line.length === 0 || line.startsWith(' ') || line.startsWith('\t') || /^SIP\//i.test(line)) return;
      const msg = `${line}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n`;
      const r = parseMessage(bytes(msg));
      const ref = line.split(' ').filter((p) => p.length > 0);
      if (ref.length !== 3) {
        assert.ok(!r.ok && r.error instanceof SipParseError);
        assert.equal(r.error.message, `start line ${show(line)}: expected 3 space-separated parts, got ${ref.length}`);
      } else if (r.ok) {
        const req = r.value as SipRequest;
        assert.deepEqual([req.method, req.uri], ref.slice(0, 2));
      } else {
        assert.equal(r.error.code === 'SIP_BAD_START_LINE' || r.error.code === 'SIP_BAD_VERSION', true, r.error.message);
        assert.doesNotMatch(r.error.message, /space-separated parts/);
      }
    }),
  );
});

test('a parsed URI has no field set to undefined (absent fields are absent, as the spread version made them)', () => {
  const uri = fc
    .record({
      user: fc.option(tok, { nil: undefined }),
      password: fc.option(tok, { nil: undefined }),
      host: fc.constantFrom('ims.example', '192.0.2.1', '[2001:db8::1]'),
      port: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
      params: fc.constantFrom('', ';lr', ';transport=udp;lr'),
      headers: fc.constantFrom('', '?a=b', '?a=b&c=d'),
    })
    .map(
      (u) =>
        `sip:${u.user === undefined ? '' : u.user + (u.password === undefined ? '' : ':' + u.password) + '@'}${u.host}${u.port === undefined ? '' : ':' + u.port}${u.params}${u.headers}`,
    );
  fc.assert(
    fc.property(uri, (text) => {
      const r = parseUri(text);
      if (!r.ok) return;
      for (const [k, v] of Object.entries(r.value)) assert.notEqual(v, undefined, k);
    }),
  );
});

test('header names matched in place (the spelling cache) give what canonicalHeaderName gives, in any case and order', () => {
  const spelled = fc
    .tuple(
      fc.constantFrom('Via', 'v', 'Security-Client', 'Proxy-Require', 'x-Custom-Header', 'Call-ID', 'i', 'Contact', 'P-Associated-URI'),
      fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
    )
    .map(([n, up]) => [...n].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
  fc.assert(
    fc.property(fc.array(spelled, { minLength: 1, maxLength: 12 }), (names) => {
      const text = `OPTIONS sip:a@b SIP/2.0\r\n${names.map((n, i) => `${n}: value-${i}-long-enough`).join('\r\n')}\r\n\r\n`;
      for (let round = 0; round < 2; round++) {
        const r = parseMessage(bytes(text));
        assert.ok(r.ok);
        const got = r.value.headers.entries().map((f) => [f.name, f.value]);
        assert.deepEqual(
          got,
          names.map((n, i) => [canonicalHeaderName(n), `value-${i}-long-enough`]),
        );
      }
    }),
  );
});
