// Digest header codec: §6 / 24.229 shapes, RFC 7235 syntax rules, fast-check round trip and fuzz.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  buildDigestHeader,
  getParam,
  paramRecord,
  parseDigestHeader,
  parseDigestHeaderOrThrow,
  removeParams,
  serializeDigestHeader,
  setParam,
  type DigestHeader,
  type DigestParam,
} from './digest-header.ts';
import { InputError } from '../util/errors.ts';

const S_TO_P =
  'Digest realm="ims.mnc001.mcc001.3gppnetwork.org", nonce="I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=", ' +
  'algorithm=AKAv1-MD5, ik="f769bcd751044604127672711c6d3441", ck="b40ba9a3c58b2a05bbf0d987b21bf8cb"';

test('parses the §6 S-CSCF → P-CSCF challenge, ik and ck included', () => {
  const h = parseDigestHeaderOrThrow(S_TO_P);
  assert.equal(h.scheme, 'Digest');
  assert.deepEqual(paramRecord(h), {
    realm: 'ims.mnc001.mcc001.3gppnetwork.org',
    nonce: 'I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=',
    algorithm: 'AKAv1-MD5',
    ik: 'f769bcd751044604127672711c6d3441',
    ck: 'b40ba9a3c58b2a05bbf0d987b21bf8cb',
  });
  assert.equal(h.params.find((p) => p.name === 'algorithm')?.quoted, false);
  assert.equal(serializeDigestHeader(h), S_TO_P, 'serialization keeps order and quoting');
});

test('the P-CSCF strips ck and ik (any case) before forwarding the 401 (pitfall 4)', () => {
  const h = removeParams(parseDigestHeaderOrThrow(S_TO_P.replace('ck=', 'CK=')), 'ck', 'ik');
  assert.equal(getParam(h, 'ck'), undefined);
  assert.equal(getParam(h, 'ik'), undefined);
  assert.equal(
    serializeDigestHeader(h),
    'Digest realm="ims.mnc001.mcc001.3gppnetwork.org", nonce="I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=", algorithm=AKAv1-MD5',
  );
});

test('credentials keep auts, integrity-protected and unknown parameters; names match case-insensitively', () => {
  const h = parseDigestHeaderOrThrow(
    'Digest username="u@r", realm="r", nonce="n", uri="sip:r", response="", algorithm=AKAv1-MD5, ' +
      'auts="TyA5OS3dS7QxbtShRog=", integrity-protected="yes", x-vendor=7, qop=auth, nc=00000001, cnonce="c"',
  );
  assert.equal(getParam(h, 'AUTS'), 'TyA5OS3dS7QxbtShRog=');
  assert.equal(getParam(h, 'integrity-protected'), 'yes');
  assert.equal(getParam(h, 'x-vendor'), '7');
  assert.equal(getParam(h, 'response'), '', 'the empty response of a MAC failure');
  assert.equal(getParam(h, 'qop'), 'auth');
});

test('quoted strings unescape \\" and \\\\; the serializer escapes them back', () => {
  const h = parseDigestHeaderOrThrow('Digest realm="a\\"b\\\\c\\d", opaque=""');
  assert.equal(getParam(h, 'realm'), 'a"b\\cd');
  assert.equal(serializeDigestHeader(h), 'Digest realm="a\\"b\\\\cd", opaque=""');
});

test('whitespace, folding and empty list elements are tolerated', () => {
  const h = parseDigestHeaderOrThrow('  Digest\t ,realm = "r" ,,\r\n nonce=abc== ,');
  assert.deepEqual(paramRecord(h), { realm: 'r', nonce: 'abc==' });
});

test('malformed values are InputErrors naming the problem', () => {
  const cases: [string, RegExp][] = [
    ['', /missing auth scheme/],
    ['Digest realm', /has no "="/],
    ['Digest realm="r", realm="s"', /occurs twice/],
    ['Digest REALM="r", realm="s"', /occurs twice/],
    ['Digest realm="r', /unterminated/],
    ['Digest realm=', /empty unquoted value/],
    ['Digest realm="r" nonce="n"', /expected ","/],
    ['Digest realm="a\r\nX-Injected: 1"', /CR, LF or NUL/],
    ['Digest, realm="r"', /unexpected ","/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseDigestHeaderOrThrow(text),
      (e: unknown) => e instanceof InputError && re.test(e.message),
      text,
    );
  }
});

test('the serializer refuses CR/LF/NUL in values and non-token names (no header injection)', () => {
  assert.throws(
    () => serializeDigestHeader({ scheme: 'Digest', params: [{ name: 'realm', value: 'a\r\nB: c', quoted: true }] }),
    InputError,
  );
  assert.throws(() => serializeDigestHeader({ scheme: 'Digest', params: [{ name: 'a b', value: 'x', quoted: true }] }), InputError);
  assert.throws(() => serializeDigestHeader({ scheme: 'Di gest', params: [] }), InputError);
});

test('builders quote as the RFCs do: algorithm/nc/qop bare in credentials, qop quoted in a challenge', () => {
  const cred = buildDigestHeader({
    username: 'u',
    realm: 'r',
    nonce: 'n',
    uri: 'sip:r',
    response: '',
    algorithm: 'AKAv1-MD5',
    qop: 'auth',
    nc: '00000001',
    cnonce: 'c',
    auts: undefined,
  });
  assert.equal(
    serializeDigestHeader(cred),
    'Digest username="u", realm="r", nonce="n", uri="sip:r", response="", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c"',
  );
  const chal = buildDigestHeader({ realm: 'r', nonce: 'n', algorithm: 'AKAv1-MD5', qop: 'auth' }, { challenge: true });
  assert.equal(serializeDigestHeader(chal), 'Digest realm="r", nonce="n", algorithm=AKAv1-MD5, qop="auth"');
  const set = setParam(setParam(chal, 'NONCE', 'm'), 'ik', 'aa');
  assert.equal(serializeDigestHeader(set), 'Digest realm="r", nonce="m", algorithm=AKAv1-MD5, qop="auth", ik="aa"');
});

// --- properties -------------------------------------------------------------------------------

const tchar = fc.constantFrom(..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split(''));
const token = fc.string({ unit: tchar, minLength: 1, maxLength: 12 });
const quotedValue = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !/[\r\n\x00]/.test(s));
const param = fc.oneof(
  fc.record({ name: token, value: quotedValue, quoted: fc.constant(true) }, { noNullPrototype: true }),
  fc.record({ name: token, value: token, quoted: fc.constant(false) }, { noNullPrototype: true }),
);
const header: fc.Arbitrary<DigestHeader> = fc.record(
  { scheme: token, params: fc.uniqueArray(param, { selector: (p) => p.name.toLowerCase(), maxLength: 8 }) },
  { noNullPrototype: true },
);

test('property: parse(serialize(h)) equals h', () => {
  fc.assert(
    fc.property(header, (h) => assert.deepEqual(parseDigestHeader(serializeDigestHeader(h)), { ok: true, value: h })),
    { numRuns: 500 },
  );
});

test('property: parseDigestHeader never throws on arbitrary strings; a failure is an InputError AKA_BAD_INPUT', () => {
  const noise = fc.oneof(
    fc.string({ maxLength: 120 }),
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc
      .array(fc.constantFrom('Digest', ' ', ',', '=', '"', '\\', 'a', 'nonce', '\r\n', '\t', '\x00', 'é'), { maxLength: 30 })
      .map((a) => a.join('')),
  );
  fc.assert(
    fc.property(noise, (s) => {
      const r = parseDigestHeader(s);
      if (r.ok) return;
      assert.ok(r.error instanceof InputError);
      assert.equal(r.error.code, 'AKA_BAD_INPUT');
    }),
    { numRuns: 2000 },
  );
});

test('property: whatever parses serializes and reparses to the same header', () => {
  const near = fc
    .array(fc.constantFrom('Digest', ' ', ',', '=', '"', '\\', 'a', 'b=', 'nonce', 'x"y', '\t', 'é', '/+'), { maxLength: 30 })
    .map((a) => a.join(''));
  fc.assert(
    fc.property(near, (s) => {
      const r = parseDigestHeader(s);
      if (!r.ok) return;
      const h = r.value;
      assert.deepEqual(parseDigestHeaderOrThrow(serializeDigestHeader(h)), h);
    }),
    { numRuns: 2000 },
  );
});

// --- the parser before it read char codes (a regular expression per character), as the model ----

const TCHAR_RE = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const BARE_CHAR_RE = /[^ ,"\\\x00-\x1f\x7f]/;
const FORBIDDEN_IN_QUOTED = /[\r\n\x00]/;
const WS = new Set([' ', '\t', '\r', '\n']);
const bad = (msg: string) => new InputError(`digest header: ${msg}`, 'AKA_BAD_INPUT');

function referenceParse(text: string): DigestHeader {
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && WS.has(text[i]!)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TCHAR_RE.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  skipWs();
  const scheme = readToken();
  if (scheme === '') throw bad('missing auth scheme');
  if (i < n && !WS.has(text[i]!)) throw bad(`unexpected ${JSON.stringify(text[i])} after the scheme`);
  const params: DigestParam[] = [];
  const seen = new Set<string>();
  for (;;) {
    skipWs();
    while (i < n && text[i] === ',') {
      i++; // empty list elements are allowed (RFC 7230 §7)
      skipWs();
    }
    if (i >= n) break;
    const at = i;
    const name = readToken();
    if (name === '') throw bad(`expected a parameter name at offset ${at}`);
    skipWs();
    if (text[i] !== '=') throw bad(`parameter ${JSON.stringify(name.slice(0, 40))} has no "=" (one challenge per header value)`);
    i++;
    skipWs();
    let value: string;
    let quoted: boolean;
    if (text[i] === '"') {
      i++;
      let out = '';
      for (;;) {
        if (i >= n) throw bad(`unterminated quoted value of ${JSON.stringify(name.slice(0, 40))}`);
        const c = text[i]!;
        if (c === '"') break;
        if (FORBIDDEN_IN_QUOTED.test(c) || (c === '\\' && FORBIDDEN_IN_QUOTED.test(text[i + 1] ?? ''))) {
          throw bad(`CR, LF or NUL inside the quoted value of ${JSON.stringify(name.slice(0, 40))}`);
        }
        if (c === '\\') {
          if (i + 1 >= n) throw bad(`unterminated quoted value of ${JSON.stringify(name.slice(0, 40))}`);
          out += text[i + 1]!;
          i += 2;
        } else {
          out += c;
          i++;
        }
      }
      i++;
      value = out;
      quoted = true;
    } else {
      const start = i;
      while (i < n && BARE_CHAR_RE.test(text[i]!)) i++;
      value = text.slice(start, i);
      if (value === '') throw bad(`parameter ${JSON.stringify(name.slice(0, 40))} has an empty unquoted value`);
      quoted = false;
    }
    // RFC 7235 §2.1: each parameter name MUST only occur once per challenge.
    const key = name.toLowerCase();
    if (seen.has(key)) throw bad(`parameter ${JSON.stringify(name.slice(0, 40))} occurs twice`);
    seen.add(key);
    params.push({ name, value, quoted });
    skipWs();
    if (i < n && text[i] !== ',') throw bad(`expected "," after parameter ${JSON.stringify(name.slice(0, 40))}`);
  }
  return { scheme, params };
}

test('property: the parser agrees with the reference model (value, or error message) on near-miss and arbitrary input', () => {
  const near = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc
      .array(
        fc.constantFrom('Digest', ' ', ',', '=', '"', '\\', 'a', 'b=', 'nonce', 'x"y', '\t', '\r', '\n', '\x00', '\x7f', 'é', '/+', 'A'),
        { maxLength: 30 },
      )
      .map((a) => a.join('')),
  );
  const outcome = (f: () => DigestHeader) => {
    try {
      return { ok: true, value: f() };
    } catch (e) {
      assert.ok(e instanceof InputError);
      return { ok: false, message: e.message };
    }
  };
  fc.assert(
    fc.property(near, (s) =>
      assert.deepEqual(
        outcome(() => parseDigestHeaderOrThrow(s)),
        outcome(() => referenceParse(s)),
      ),
    ),
    { numRuns: 5000 },
  );
});
