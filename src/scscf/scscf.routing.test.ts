// Routing at the S-CSCF over a MemoryNetwork (RFC 3261 §16, RFC 3327 §5.4, 24.229 §5.4.3): MESSAGE
// from the P-CSCF proxied along a registered Path or answered as the AS, 403 without an asserted
// registered identity, and network-initiated requests built by sendMessage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequest, newBranch, newCallId, newTag, parseViaOrThrow, type MemoryNetwork, type SipRequest } from '../sip/index.ts';
import { ScscfError } from './errors.ts';
import { ALICE, BOB, DOMAIN, PATH, PCSCF, SCSCF, setup, usimOf, type User } from './_test-helpers.ts';

/** A MESSAGE as the P-CSCF forwards it from a UE: UE Via, Route to the Service-Route, P-Asserted-Identity. */
function message(from: User, target: string, opts: { pai?: string | null; maxForwards?: number } = {}): SipRequest {
  const headers: [string, string][] = [
    ['Route', `<sip:orig@${SCSCF.address}:${SCSCF.port};lr>`],
    ['Content-Type', 'text/plain'],
  ];
  if (opts.pai !== null) headers.push(['P-Asserted-Identity', `<${opts.pai ?? from.impus[0]}>`]);
  return createRequest({
    method: 'MESSAGE',
    uri: target,
    via: `SIP/2.0/UDP ${from.ue.address}:${from.ue.port};received=${from.ue.address};rport=${from.ue.port};branch=${newBranch()}`,
    from: `<${from.impus[0]}>;tag=${newTag()}`,
    to: `<${target}>`,
    callId: newCallId(),
    cseq: 1,
    maxForwards: opts.maxForwards ?? 69,
    headers,
    body: new TextEncoder().encode('hello'),
  });
}

/** Where the S-CSCF last sent a request of `method`. */
function lastSent(net: MemoryNetwork, method: string) {
  const p = net.log.filter((x) => x.from.port === SCSCF.port && Buffer.from(x.bytes).toString('latin1').startsWith(`${method} `)).at(-1);
  return p && { address: p.to.address, port: p.to.port };
}

test('MESSAGE to a target nobody registered is answered 200 by the S-CSCF itself', async () => {
  const { scscf, pcscf, ue, events } = await setup();
  await ue.registerFully(usimOf(ALICE));
  const res = await pcscf.send(message(ALICE, `sip:echo@${DOMAIN}`));
  assert.equal(res.status, 200);
  assert.deepEqual(
    res.headers.getAll('Via').map((v) => parseViaOrThrow(v).host),
    [PCSCF.address, ALICE.ue.address],
  );
  assert.equal(pcscf.received.length, 0, 'nothing was proxied');
  assert.deepEqual(events.at(-1), {
    type: 'message',
    method: 'MESSAGE',
    from: ALICE.impus[0],
    to: `sip:echo@${DOMAIN}`,
    route: 'answered',
    status: 200,
  });
  const options = message(ALICE, `sip:echo@${DOMAIN}`);
  options.method = 'OPTIONS';
  options.headers.set('CSeq', '1 OPTIONS');
  assert.equal((await pcscf.send(options)).status, 200, 'any non-REGISTER method');
  const invite = message(ALICE, `sip:echo@${DOMAIN}`);
  invite.method = 'INVITE';
  invite.headers.set('CSeq', '1 INVITE');
  assert.equal((await pcscf.send(invite)).status, 501, 'no INVITE sessions (documented deviation)');
  await scscf.stop();
});

test('requests without a P-Asserted-Identity of a registered user are refused with 403', async () => {
  const { scscf, pcscf, ue } = await setup();
  assert.equal((await pcscf.send(message(ALICE, `sip:echo@${DOMAIN}`))).status, 403, 'asserted but not registered');
  await ue.registerFully(usimOf(ALICE));
  assert.equal((await pcscf.send(message(ALICE, `sip:echo@${DOMAIN}`, { pai: null }))).status, 403, 'no P-Asserted-Identity');
  assert.equal((await pcscf.send(message(ALICE, `sip:echo@${DOMAIN}`, { pai: BOB.impus[0] }))).status, 403, 'asserts an unregistered IMPU');
  assert.equal(scscf.counters.rejected, 3);
  await scscf.stop();
});

test('MESSAGE to a registered IMPU is proxied along its Path: Request-URI = Contact, Route = Path, own Route popped, Via added', async () => {
  const { scscf, pcscf, ue, events, net } = await setup();
  await ue.registerFully(usimOf(ALICE));
  await ue.registerFully(usimOf(BOB), { user: BOB });
  pcscf.answerWith = 202;
  const res = await pcscf.send(message(ALICE, BOB.impus[0]!));
  assert.equal(pcscf.received.length, 1);
  const fwd = pcscf.received[0]!.req;
  assert.equal(fwd.uri, `sip:bob@${BOB.ue.address}:${BOB.ue.port}`);
  assert.deepEqual(fwd.headers.getAll('Route'), [PATH]);
  assert.equal(fwd.headers.get('Max-Forwards'), '68');
  assert.deepEqual(
    fwd.headers.getAll('Via').map((v) => parseViaOrThrow(v).host),
    [SCSCF.address, PCSCF.address, ALICE.ue.address],
  );
  assert.equal(fwd.headers.get('P-Asserted-Identity'), `<${ALICE.impus[0]}>`);
  assert.equal(new TextDecoder().decode(fwd.body), 'hello');
  assert.deepEqual(lastSent(net, 'MESSAGE'), { address: PCSCF.address, port: PCSCF.port }, 'sent to the first Path hop');
  // The final response comes back with our Via removed.
  assert.equal(res.status, 202);
  assert.deepEqual(
    res.headers.getAll('Via').map((v) => parseViaOrThrow(v).host),
    [PCSCF.address, ALICE.ue.address],
  );
  assert.deepEqual(events.at(-1), {
    type: 'message',
    method: 'MESSAGE',
    from: ALICE.impus[0],
    to: BOB.impus[0],
    route: 'proxied',
    status: 202,
  });
  await scscf.stop();
});

test('the To header picks the target when the Request-URI is not a registered IMPU; a tel: IMPU routes too', async () => {
  const s = await setup();
  await s.ue.registerFully(usimOf(ALICE));
  await s.ue.registerFully(usimOf(BOB), { user: BOB });
  const viaTo = message(BOB, `sip:service@${DOMAIN}`);
  viaTo.headers.set('To', `<${ALICE.impus[0]}>`);
  assert.equal((await s.pcscf.send(viaTo)).status, 200);
  assert.equal(s.pcscf.received.at(-1)!.req.uri, `sip:alice@${ALICE.ue.address}:${ALICE.ue.port}`);
  assert.equal((await s.pcscf.send(message(BOB, 'tel:+1-555-0100'))).status, 200);
  assert.equal(s.pcscf.received.length, 2);
  assert.equal(s.scscf.counters.proxied, 2);
  await s.scscf.stop();
});

test('Max-Forwards 0 ⇒ 483; no answer downstream ⇒ 408 after Timer F', async () => {
  const s = await setup();
  await s.ue.registerFully(usimOf(ALICE));
  assert.equal((await s.pcscf.send(message(ALICE, ALICE.impus[0]!, { maxForwards: 0 }))).status, 483);
  s.pcscf.answerWith = undefined;
  const pending = s.pcscf.send(message(ALICE, ALICE.impus[0]!));
  await s.net.settle();
  s.clock.advance(32_000);
  assert.equal((await pending).status, 408);
  await s.scscf.stop();
});

test('sendMessage: Request-URI = registered Contact, Route = Path, From the network with a tag, to the first Path hop', async () => {
  const s = await setup();
  await s.ue.registerFully(usimOf(BOB), { user: BOB });
  const res = await s.scscf.sendMessage(BOB.impus[0]!, 'your code is 1234');
  assert.equal(res.status, 200);
  const req = s.pcscf.received.at(-1)!.req;
  assert.equal(req.method, 'MESSAGE');
  assert.equal(req.uri, `sip:bob@${BOB.ue.address}:${BOB.ue.port}`);
  assert.deepEqual(req.headers.getAll('Route'), [PATH]);
  assert.match(req.headers.get('From')!, new RegExp(`^<sip:network@${DOMAIN.replace('.', '\\.')}>;tag=\\w+$`));
  assert.equal(req.headers.get('To'), `<${BOB.impus[0]}>`);
  assert.equal(req.headers.get('CSeq'), '1 MESSAGE');
  assert.equal(req.headers.get('Content-Type'), 'text/plain;charset=utf-8');
  assert.equal(new TextDecoder().decode(req.body), 'your code is 1234');
  assert.equal(parseViaOrThrow(req.headers.get('Via')!).host, SCSCF.address);
  assert.deepEqual(lastSent(s.net, 'MESSAGE'), { address: PCSCF.address, port: PCSCF.port });
  assert.equal(s.events.at(-1)!.type, 'message');
  assert.equal(s.scscf.counters.networkRequests, 1);

  // Another Call-ID each time; custom From and Content-Type.
  await s.scscf.sendMessage(BOB.impus[0]!, '{}', { from: `sip:alerts@${DOMAIN}`, contentType: 'application/json' });
  const second = s.pcscf.received.at(-1)!.req;
  assert.notEqual(second.headers.get('Call-ID'), req.headers.get('Call-ID'));
  assert.match(second.headers.get('From')!, /^<sip:alerts@ims\.example>;tag=/);
  assert.equal(second.headers.get('Content-Type'), 'application/json');
  await s.scscf.stop();
});

test('sendMessage rejects: no binding, Timer F, stop()', async () => {
  const s = await setup();
  await assert.rejects(s.scscf.sendMessage(BOB.impus[0]!, 'x'), (e) => e instanceof ScscfError && e.code === 'SCSCF_NOT_REGISTERED');
  await s.ue.registerFully(usimOf(BOB), { user: BOB });
  s.pcscf.answerWith = undefined;
  const timeout = s.scscf.sendMessage(BOB.impus[0]!, 'x');
  await s.net.settle();
  s.clock.advance(32_000);
  await assert.rejects(timeout, (e) => e instanceof ScscfError && e.code === 'SCSCF_TIMEOUT');
  const stopped = s.scscf.sendMessage(BOB.impus[0]!, 'x');
  await s.scscf.stop();
  await assert.rejects(stopped, (e) => e instanceof ScscfError && e.code === 'SCSCF_STOPPED');
});
