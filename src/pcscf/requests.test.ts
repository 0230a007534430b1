// Requests through the P-CSCF once registered, end to end on loopback: identity checks over the SA
// sets (24.229 §5.2.6.3), unprotected traffic, network-initiated requests (§5.2.6.4), admission
// (33.203 §7.1 rule 3), CANCEL and ACK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { protectedContextOf, protectedTransport } from '../ipsec/backends/sip-endpoint.ts';
import { createCancel, createRequest } from '../sip/builders.ts';
import { LOOP } from './_test-kit.ts';
import { eventually, world } from './_world.ts';

test("identity checks: over UE A's set, claiming UE B's IMPU is refused; a good request gets P-Asserted-Identity and loses the P-CSCF Route", async () => {
  const w = await world();
  try {
    const alice = await w.ue();
    const bob = await w.ue({ impi: 'bob@ims.example.org', impu: 'sip:bob@ims.example.org' });
    assert.equal((await alice.register()).res.status, 200);
    assert.equal((await bob.register()).res.status, 200);

    const spoof = await alice.send('MESSAGE', { from: 'sip:bob@ims.example.org' });
    assert.equal(spoof.res.status, 403);
    assert.match(spoof.res.headers.get('Warning')!, /SA set of another registration/);
    assert.equal(protectedContextOf(spoof.ctx)?.set, alice.current, "the refusal goes back over A's set");
    const viaPpi = await alice.send('MESSAGE', { ppi: 'sip:bob@ims.example.org' });
    assert.equal(viaPpi.res.status, 403);
    assert.equal(w.pcscf.counters.rejected['other-registration-identity'], 2);
    assert.equal((await alice.send('MESSAGE', { from: 'sip:carol@ims.example.org' })).res.status, 403);
    assert.equal(w.pcscf.counters.rejected['identity-not-registered'], 1);

    const ok = await alice.send('MESSAGE', { ppi: 'sip:alice@ims.example.org' });
    assert.equal(ok.res.status, 200);
    assert.equal(protectedContextOf(ok.ctx)?.sa.name, 'SA2');
    const fwd = w.scscf.requests.filter((r) => r.method === 'MESSAGE');
    assert.equal(fwd.length, 1);
    assert.equal(fwd[0]!.headers.get('P-Asserted-Identity'), '<sip:alice@ims.example.org>');
    assert.equal(fwd[0]!.headers.has('P-Preferred-Identity'), false);
    assert.match(fwd[0]!.headers.get('Route')!, /^<sip:orig@/, 'own Route removed, Service-Route used');
  } finally {
    await w.close();
  }
});

test('unprotected traffic: a datagram to a protected port is dropped and counted; an unprotected MESSAGE to 5060 gets 403', async () => {
  const w = await world();
  const s = createSocket('udp4');
  try {
    const ue = await w.ue();
    assert.equal((await ue.register()).res.status, 200);
    const msg = Buffer.from(`MESSAGE sip:x@${LOOP} SIP/2.0\r\nVia: SIP/2.0/UDP ${LOOP}:1;branch=z9hG4bKx\r\n\r\n`);
    await new Promise<void>((r) => s.send(msg, w.pcscf.portS, LOOP, () => r()));
    await new Promise<void>((r) => s.send(msg, w.pcscf.portC, LOOP, () => r()));
    await eventually(() => w.pcscf.counters.unprotectedOnProtectedPort === 2, 'two drops counted');
    assert.equal(w.named('dropped').length, 2);

    const plain = await ue.sendPlain('MESSAGE');
    assert.equal(plain.res.status, 403);
    assert.equal(w.pcscf.counters.rejected['unprotected-request'], 1);
  } finally {
    s.close();
    await w.close();
  }
});

test("network-initiated request: over SA2 from port_pc with our Via, the UE's answer relayed; unknown contact ⇒ 404", async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    assert.equal((await ue.register()).res.status, 200);
    const r = await w.scscf.sendToUe(w.pcscf, ue.contact);
    assert.equal(r.res.status, 200);
    const got = ue.incoming[0]!;
    assert.equal(protectedContextOf(got.ctx)?.sa.name, 'SA2');
    assert.equal(protectedContextOf(got.ctx)?.set, ue.current);
    assert.match(got.req.headers.get('Via')!, new RegExp(`^SIP/2.0/UDP ${LOOP}:${w.pcscf.portC};branch=`));
    assert.equal(got.req.headers.has('Route'), false, 'the Path Route entry is consumed');
    assert.equal(w.pcscf.registrations()[0]!.sets[0]!.inFlight, 0, 'nothing waits for a final response any more');
    const miss = await w.scscf.sendToUe(w.pcscf, `sip:nobody@${LOOP}:1`);
    assert.equal(miss.res.status, 404);
  } finally {
    await w.close();
  }
});

test('INVITE: a CANCEL follows the forwarded INVITE (same branch); the ACK of a 2xx is forwarded to the S-CSCF', async () => {
  const w = await world();
  try {
    const ue = await w.ue();
    assert.equal((await ue.register()).res.status, 200);
    w.scscf.hold = true;
    const inv = ue.build('INVITE');
    const calling = ue.sendOver(ue.current!, inv);
    await eventually(() => w.scscf.held.length === 1, 'INVITE held at the S-CSCF');
    const c = await ue.sendOver(ue.current!, createCancel(inv));
    assert.equal(c.res.status, 200);
    await eventually(() => w.scscf.requests.some((r) => r.method === 'CANCEL'), 'CANCEL forwarded');
    const fwdInvite = w.scscf.requests.find((r) => r.method === 'INVITE')!;
    const fwdCancel = w.scscf.requests.find((r) => r.method === 'CANCEL')!;
    assert.equal(fwdCancel.headers.get('Via')!.split(';rport')[0], fwdInvite.headers.get('Via')!.split(';rport')[0]);
    w.scscf.release(487);
    assert.equal((await calling).res.status, 487);

    w.scscf.hold = false;
    const inv2 = ue.build('INVITE');
    const ok = await ue.sendOver(ue.current!, inv2);
    assert.equal(ok.res.status, 200);
    const ack = createRequest({
      method: 'ACK',
      uri: inv2.uri,
      via: `SIP/2.0/UDP ${LOOP}:${ue.portUs};branch=z9hG4bKack${Date.now()}`,
      from: inv2.headers.get('From')!,
      to: ok.res.headers.get('To')!,
      callId: inv2.headers.get('Call-ID')!,
      cseq: Number(inv2.headers.get('CSeq')!.split(' ')[0]),
    });
    ack.headers.set('CSeq', `${ack.headers.get('CSeq')!.split(' ')[0]} ACK`);
    const ep = await ue.endpoint(ue.portUc);
    await ue.layer.sendStateless(ack, {
      transport: protectedTransport(ep, { set: ue.current! }),
      to: { address: LOOP, port: w.pcscf.portS },
    });
    await eventually(() => w.scscf.requests.some((r) => r.method === 'ACK'), 'ACK forwarded');
  } finally {
    await w.close();
  }
});
