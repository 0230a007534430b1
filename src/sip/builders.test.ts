// Builders: identifiers, createResponse (RFC 3261 §8.2.6), createAck (§17.1.1.3), createCancel (§9.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAck, createCancel, createRequest, createResponse, newBranch, newCallId, newTag } from './builders.ts';
import { SipResponse } from './message.ts';
import { parseNameAddrOrThrow, tagOf } from './name-addr.ts';
import { validateRequest } from './validate.ts';
import { request } from './_test-helpers.ts';

test('branches start with the magic cookie z9hG4bK and differ (§8.1.1.7)', () => {
  const a = newBranch();
  assert.match(a, /^z9hG4bK[0-9a-f]{24}$/);
  assert.notEqual(a, newBranch());
  assert.match(newTag(), /^[0-9a-f]{16}$/);
  assert.match(newCallId('ue.example'), /^[0-9a-f]{32}@ue\.example$/);
});

test('a response copies every Via in order, From, Call-ID, CSeq and To, and adds a To tag (§8.2.6.2)', () => {
  const req = request('REGISTER');
  req.headers.append('Via', 'SIP/2.0/UDP proxy.example;branch=z9hG4bKp1');
  req.headers.append('Contact', '<sip:ue@192.0.2.1>');
  const res = createResponse(req, 401, undefined, [['WWW-Authenticate', 'Digest realm="r", nonce="n", algorithm=AKAv1-MD5']], {
    toTag: 'xyz',
  });
  assert.equal(res.reason, 'Unauthorized');
  assert.deepEqual(res.headers.getAll('Via'), req.headers.getAll('Via'));
  assert.equal(res.headers.get('From'), req.headers.get('From'));
  assert.equal(res.headers.get('Call-ID'), req.headers.get('Call-ID'));
  assert.equal(res.headers.get('CSeq'), '314159 REGISTER');
  assert.equal(tagOf(parseNameAddrOrThrow(res.headers.get('To')!)), 'xyz');
  assert.equal(res.headers.has('Contact'), false);
  assert.equal(res.headers.get('WWW-Authenticate'), 'Digest realm="r", nonce="n", algorithm=AKAv1-MD5');
  assert.equal(res.body.length, 0);
});

test('a 100 Trying gets no To tag but copies Timestamp (§8.2.6.1)', () => {
  const req = request('INVITE');
  req.headers.append('Timestamp', '54');
  const res = createResponse(req, 100);
  assert.equal(tagOf(parseNameAddrOrThrow(res.headers.get('To')!)), undefined);
  assert.equal(res.headers.get('Timestamp'), '54');
});

test('an existing To tag is kept', () => {
  const res = createResponse(request('BYE', { toTag: 'dialog1' }), 200);
  assert.equal(tagOf(parseNameAddrOrThrow(res.headers.get('To')!)), 'dialog1');
});

test('the ACK for a non-2xx: one Via (the INVITE top Via), same R-URI/From/Call-ID/CSeq number, To of the response, Routes (§17.1.1.3)', () => {
  const inv = request('INVITE', { branch: 'z9hG4bKinv1' });
  inv.headers.append('Via', 'SIP/2.0/UDP lower.example;branch=z9hG4bKlow');
  inv.headers.append('Route', '<sip:p1.example;lr>');
  inv.headers.append('Route', '<sip:p2.example;lr>');
  const res = createResponse(inv, 486, undefined, [], { toTag: 'callee' });
  const ack = createAck(inv, res);
  assert.equal(ack.method, 'ACK');
  assert.equal(ack.uri, inv.uri);
  assert.deepEqual(ack.headers.getAll('Via'), [inv.headers.get('Via')]);
  assert.equal(ack.headers.get('To'), res.headers.get('To'));
  assert.equal(ack.headers.get('From'), inv.headers.get('From'));
  assert.equal(ack.headers.get('CSeq'), '314159 ACK');
  assert.deepEqual(ack.headers.getAll('Route'), ['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
  assert.ok(validateRequest(ack).ok);
});

test('CANCEL keeps R-URI, Call-ID, To, From and the CSeq number, with a single Via equal to the INVITE top Via (§9.1)', () => {
  const inv = request('INVITE', { branch: 'z9hG4bKinv2' });
  const cancel = createCancel(inv);
  assert.equal(cancel.method, 'CANCEL');
  assert.equal(cancel.headers.get('To'), inv.headers.get('To'));
  assert.equal(cancel.headers.get('CSeq'), '314159 CANCEL');
  assert.deepEqual(cancel.headers.getAll('Via'), [inv.headers.get('Via')]);
  assert.ok(validateRequest(cancel).ok);
});

test('createRequest puts the mandatory headers first and validates', () => {
  const r = createRequest({
    method: 'REGISTER',
    uri: 'sip:ims.example',
    via: `SIP/2.0/UDP 192.0.2.5:5060;branch=${newBranch()};rport`,
    from: '<sip:u@ims.example>;tag=1',
    to: '<sip:u@ims.example>',
    callId: newCallId(),
    cseq: 1,
    headers: [
      ['Require', 'sec-agree'],
      ['Proxy-Require', 'sec-agree'],
    ],
  });
  assert.deepEqual(
    r.headers
      .entries()
      .slice(0, 6)
      .map((f) => f.name),
    ['Via', 'Max-Forwards', 'From', 'To', 'Call-ID', 'CSeq'],
  );
  assert.ok(validateRequest(r).ok);
});

test('createResponse refuses a status outside 100..699', () => {
  assert.throws(() => createResponse(request('OPTIONS'), 99));
  assert.ok(createResponse(request('OPTIONS'), 699) instanceof SipResponse);
});
