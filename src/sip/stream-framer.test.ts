// Stream framing (RFC 3261 §18.3): split by Content-Length across arbitrary chunk boundaries, skip
// CRLF keep-alives (RFC 5626 §3.5.1), and fail typed on what cannot be framed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StreamFramer } from './stream-framer.ts';
import { SipParseError } from './errors.ts';
import { bytes, crlf } from './_test-helpers.ts';

/** A MESSAGE carrying `body`, with CRLF line ends (or LF-only ones, which the framer tolerates). */
const msg = (body: string, lfOnly = false) => {
  const head = `MESSAGE sip:a@b SIP/2.0\nContent-Length: ${Buffer.byteLength(body)}\n\n`;
  return new Uint8Array([...(lfOnly ? bytes(head) : crlf(head)), ...bytes(body)]);
};
const text = (b: Uint8Array) => Buffer.from(b).toString();

test('splits two messages delivered in one chunk and a third split across chunks', () => {
  const f = new StreamFramer();
  const a = msg('hello');
  const b = msg('');
  const c = msg('world!');
  const out = f.push(new Uint8Array([...a, ...b, ...c.subarray(0, 10)])).messages;
  assert.deepEqual(out.map(text), [text(a), text(b)]);
  assert.deepEqual(f.push(c.subarray(10)).messages.map(text), [text(c)]);
  assert.equal(f.buffered, 0);
});

test('skips CRLF keep-alives between messages and reports each double-CRLF ping', () => {
  let pings = 0;
  const f = new StreamFramer({ onKeepAlive: () => pings++ });
  const a = msg('x');
  assert.deepEqual(f.push(bytes('\r\n\r\n')).messages, []);
  assert.deepEqual(f.push(new Uint8Array([...bytes('\r\n\r\n'), ...a])).messages.map(text), [text(a)]);
  assert.equal(pings, 2);
});

test('a body containing CRLFCRLF is not mistaken for the end of the head', () => {
  const a = msg('\r\n\r\nabc\r\n\r\n');
  const f = new StreamFramer();
  const got: Uint8Array[] = [];
  for (const byte of a) got.push(...f.push(new Uint8Array([byte])).messages);
  assert.deepEqual(got.map(text), [text(a)]);
});

test('a missing Content-Length on a stream is SIP_MISSING_HEADER, and the framer stays failed', () => {
  const f = new StreamFramer();
  const bad = crlf('OPTIONS sip:a@b SIP/2.0\nCall-ID: x\n\n');
  assert.equal(f.push(bad).error?.code, 'SIP_MISSING_HEADER');
  const after = f.push(msg('ok'));
  assert.deepEqual(after.messages, []);
  assert.equal(after.error?.code, 'SIP_MISSING_HEADER');
});

test('issue 10 §5: messages framed before a malformed one in the same chunk are kept', () => {
  const f = new StreamFramer();
  const r = f.push(bytes('OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n' + 'X\r\n\r\n'));
  assert.deepEqual(r.messages.map(text), ['OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n']);
  assert.ok(r.error instanceof SipParseError);
  assert.equal(r.error.code, 'SIP_MISSING_HEADER');
});

test('bad Content-Length and oversize heads or bodies are typed errors', () => {
  assert.equal(new StreamFramer().push(crlf('OPTIONS sip:a@b SIP/2.0\nl: x\n\n')).error?.code, 'SIP_BAD_CONTENT_LENGTH');
  assert.equal(new StreamFramer({ maxMessageSize: 100 }).push(crlf('OPTIONS sip:a@b SIP/2.0\nl: 1000\n\n')).error?.code, 'SIP_TOO_LARGE');
  assert.equal(
    new StreamFramer({ maxMessageSize: 100 }).push(bytes(`OPTIONS sip:a@b SIP/2.0\r\nX: ${'a'.repeat(200)}`)).error?.code,
    'SIP_TOO_LARGE',
  );
});

test('arbitrary concatenations cut at arbitrary chunk boundaries come out as the same messages', () => {
  const bodyArb = fc.string({ maxLength: 60 });
  const itemArb = fc.tuple(bodyArb, fc.constantFrom('', '\r\n', '\r\n\r\n'), fc.boolean());
  fc.assert(
    fc.property(
      fc.array(itemArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }),
      (items, cuts) => {
        const messages = items.map(([b, , lfOnly]) => msg(b, lfOnly));
        const stream = new Uint8Array(items.flatMap(([, ka], i) => [...bytes(ka), ...messages[i]!]));
        const f = new StreamFramer();
        const out: Uint8Array[] = [];
        let pos = 0;
        for (let i = 0; pos < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          out.push(...f.push(stream.subarray(pos, pos + n)).messages);
          pos += n;
        }
        assert.deepEqual(out.map(text), messages.map(text));
        assert.equal(f.buffered, 0);
      },
    ),
    { numRuns: 500 },
  );
});
