// RFC 4475 torture messages: the valid ones parse and validate with their fields intact, the invalid
// ones fail with a SipParseError whose code says why (the caller's 400 reason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessageOrThrow } from './parser.ts';
import { serializeMessage } from './serializer.ts';
import { SipParseError } from './errors.ts';
import { SipRequest, SipResponse, type SipMessage } from './message.ts';
import { validateRequest, validateResponse } from './validate.ts';
import { parseViaOrThrow } from './via.ts';
import { parseNameAddrOrThrow } from './name-addr.ts';
import { parseUriOrThrow, type SipUri } from './uri.ts';
import { parseCSeqOrThrow } from './cseq.ts';
import * as T from './testdata/rfc4475.ts';
import { bytes } from './_test-helpers.ts';

function parseValid(text: string): SipMessage {
  const m = parseMessageOrThrow(bytes(text));
  const v = m instanceof SipRequest ? validateRequest(m) : validateResponse(m);
  assert.ok(v.ok, v.ok ? '' : v.error.message);
  // Whatever we accept, we write back in a form we accept again, unchanged.
  assert.deepEqual(parseMessageOrThrow(serializeMessage(m)), m);
  return m;
}

test('§3.1.1.1 wsinv: folding, LWS around separators, compact and odd-case names all parse', () => {
  const m = parseValid(T.WSINV) as SipRequest;
  assert.equal(m.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
  const to = parseNameAddrOrThrow(m.headers.get('To')!);
  assert.equal(to.uri, 'sip:vivekg@chair-dnrc.example.com');
  assert.equal(to.params.get('tag'), '1918181833n');
  const from = parseNameAddrOrThrow(m.headers.get('From')!);
  assert.equal(from.displayName, 'J Rosenberg \\"');
  assert.equal(from.params.get('tag'), '98asjd8');
  assert.equal(m.headers.get('Max-Forwards'), '0068');
  assert.deepEqual(parseCSeqOrThrow(m.headers.get('CSeq')!), { seq: 9, method: 'INVITE' });
  const vias = m.headers.getAll('Via').map(parseViaOrThrow);
  assert.deepEqual(
    vias.map((v) => [v.transport, v.host, v.params.get('branch')]),
    [
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ],
  );
  assert.equal(m.headers.get('Subject'), '');
  assert.equal(m.headers.get('NewFangledHeader'), 'newfangled value continued newfangled value');
  assert.equal(m.headers.raw('UnknownHeaderWithUnusualValue')[0], ';;,,;;,;');
  const contact = parseNameAddrOrThrow(m.headers.get('Contact')!);
  assert.equal(contact.displayName, 'Quoted string ""');
  assert.equal(contact.params.get('newparam'), 'newvalue');
  assert.equal(contact.params.get('secondparam'), null);
  assert.equal(contact.params.get('q'), '0.33');
  assert.equal(m.body.length, 150);
});

test('§3.1.1.2 intmeth: the widest valid token, URI and quoted-string characters parse', () => {
  const m = parseValid(T.INTMETH) as SipRequest;
  assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
  const uri = parseUriOrThrow(m.uri) as SipUri;
  assert.equal(uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  assert.equal(uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  assert.equal(parseNameAddrOrThrow(m.headers.get('To')!).displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
  const from = parseNameAddrOrThrow(m.headers.get('From')!);
  assert.equal(from.displayName, "token1~` token2'+_ token3*%!.-");
  assert.equal(from.params.getUnquoted("fromParam''~+*_!.-%"), 'работающий');
  assert.equal(from.params.get('tag'), "_token~1'+`*%!-.");
  assert.equal(m.headers.get('Call-ID'), 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
  assert.equal(m.headers.get("extensionHeader-!.%*+_`'~"), '\uFEFF大停電');
});

test('§3.1.1.3 esc01: %-escapes stay as written in URIs', () => {
  const m = parseValid(T.ESC01) as SipRequest;
  assert.equal((parseUriOrThrow(m.uri) as SipUri).user, 'sips%3Auser%40example.com');
  const c = parseUriOrThrow(parseNameAddrOrThrow(m.headers.get('Contact')!).uri) as SipUri;
  assert.equal(c.params.get('n%61me'), 'v%61lue%25%34%31');
  assert.equal(c.params.get('%6C%72'), null);
});

test('§3.1.1.4 escnull: escaped NULs in URIs are valid', () => {
  const m = parseValid(T.ESCNULL);
  assert.deepEqual(m.headers.getAll('Contact'), ['<sip:%00@host5.example.com>', '<sip:%00%00@host5.example.com>']);
});

test('§3.1.1.6 lwsdisp: no LWS between the display name and <', () => {
  const m = parseValid(T.LWSDISP);
  assert.equal(parseNameAddrOrThrow(m.headers.get('From')!).displayName, 'caller');
});

test('§3.1.1.7 longreq: long header values and many Via values', () => {
  const m = parseValid(T.LONGREQ);
  assert.equal(m.headers.getAll('Via').length, 30);
  assert.match(parseNameAddrOrThrow(m.headers.get('To')!).displayName!, /^I have a user name of (extreme){10} proportion$/);
});

test('§3.1.1.8 dblreq: octets after Content-Length in a datagram are discarded', () => {
  const m = parseValid(T.DBLREQ) as SipRequest;
  assert.equal(m.method, 'REGISTER');
  assert.equal(m.body.length, 0);
});

test('§3.1.1.9 semiuri: semicolons in the user part belong to the user', () => {
  const m = parseValid(T.SEMIURI) as SipRequest;
  const u = parseUriOrThrow(m.uri) as SipUri;
  assert.equal(u.user, 'user;par=u%40example.net');
  assert.equal(u.host, 'example.com');
  assert.equal(m.headers.getAll('Accept').length, 6);
});

test('§3.1.1.10 transports: unknown transport tokens are kept', () => {
  const m = parseValid(T.TRANSPORTS);
  assert.deepEqual(
    m.headers.getAll('Via').map((v) => parseViaOrThrow(v).transport),
    ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP'],
  );
});

test('§3.1.1.12 unreason: a UTF-8 reason phrase', () => {
  const m = parseValid(T.UNREASON) as SipResponse;
  assert.match(m.reason, /^= 2\*\*3 \* 5\*\*2 но/);
});

for (const c of T.INVALID) {
  test(`${c.name} is rejected with ${c.code}`, () => {
    let err: SipParseError | undefined;
    try {
      const m = parseMessageOrThrow(bytes(c.text));
      const v = m instanceof SipRequest ? validateRequest(m) : validateResponse(m);
      if (!v.ok) err = v.error;
    } catch (e) {
      assert.ok(e instanceof SipParseError, String(e));
      err = e;
    }
    assert.ok(err, 'accepted');
    assert.equal(err.code, c.code, err.message);
  });
}

for (const c of T.TOLERATED) {
  test(`${c.name} is tolerated`, () => {
    const m = parseMessageOrThrow(bytes(c.text)) as SipRequest;
    assert.ok(validateRequest(m).ok);
    assert.ok(!m.uri.includes(' '));
  });
}
