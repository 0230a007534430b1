// The UE behind a NAT (24.229 F.2; spec digest §15A point 2, pitfall 18), against the scripted
// P-CSCF on loopback: the 401's Via received names another (public) address, so the protected
// REGISTER and later requests carry it in the Contact while Via and the SAs keep the local one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseViaOrThrow } from '../sip/index.ts';
import { registerPair, startPair } from './_fake-pcscf.ts';

const PUBLIC = '203.0.113.9';

test('behind a NAT (UDP-enc-tun): private Contact unprotected, public Contact protected, Via local; expires read from the public Contact', async () => {
  const p = await startPair({ modes: ['trans', 'UDP-enc-tun'] });
  try {
    const done = p.ue.register();
    const r1 = await p.fake.next();
    assert.match(r1.req.headers.get('Contact')!, /@127\.0\.0\.1:/, 'unprotected REGISTER: the private address');
    // What a NAT-side P-CSCF stamps (RFC 3581 §4): the 401 copies the Via with received/rport.
    r1.req.headers.set('Via', `${r1.req.headers.get('Via')!.replace(/;rport(?=;|$)/, '')};received=${PUBLIC};rport=40001`);
    const ch = await p.fake.challenge(r1);
    const r2 = await p.fake.next();
    assert.ok(r2.pctx);
    assert.match(
      r2.req.headers.get('Contact')!,
      new RegExp(`^<sip:alice@203\\.0\\.113\\.9:${ch.set!.config.ue.portS}>`),
      'protected REGISTER: the public address (24.229 F.2.1.2.2)',
    );
    assert.equal(parseViaOrThrow(r2.req.headers.get('Via')!).host, '127.0.0.1', 'Via keeps the local address');
    await p.fake.ok(r2, ch.set!, 777);
    const r = await done;
    assert.ok(r.ok);
    assert.equal(r.expires, 777, 'the granted expires found on the public Contact');
    const st = p.ue.status();
    assert.deepEqual(st.publicAddress, { address: PUBLIC, port: 40001 });
    assert.equal(st.nat.behindNat, true);
    assert.equal(p.ue.sas.current!.config.ue.ip, '127.0.0.1', 'the SAs use the local (private) address');
    assert.equal(p.ue.sas.current!.config.ue.innerIp, undefined);
    assert.ok(p.steps.some((s) => s.includes(`public address ${PUBLIC}:40001`) && s.includes('behind a NAT')));

    const sent = p.ue.sendMessage('sip:bob@ims.example', 'hi');
    const m = await p.fake.next();
    assert.match(m.req.headers.get('Contact')!, /@203\.0\.113\.9:/, 'requests over the SAs carry the registered (public) Contact');
    await p.fake.reply(m, 200);
    assert.equal((await sent).status, 200);
  } finally {
    await p.close();
  }
});

test('without a NAT (no received in the 401) the Contact keeps the local address, in both modes', async () => {
  for (const mode of ['udp-enc-tunnel', 'transport'] as const) {
    if (mode === 'transport' && process.getuid?.() !== 0) continue; // raw ESP sockets need CAP_NET_RAW
    const p = await startPair({}, mode);
    try {
      const { r2 } = await registerPair(p);
      assert.match(r2.req.headers.get('Contact')!, /@127\.0\.0\.1:/, mode);
      assert.equal(p.ue.status().nat.behindNat, false);
    } finally {
      await p.close();
    }
  }
});

test("a refusal's Warning reaches the failure detail (e.g. a NAT without a UDP-enc-tun offer)", async () => {
  const p = await startPair({ modes: ['trans'] });
  try {
    const done = p.ue.register();
    const r1 = await p.fake.next();
    await p.fake.reply(r1, 494, [
      ['Warning', '399 203.0.113.10 "a NAT was detected but Security-Client offers no mod=UDP-enc-tun entry (33.203 Annex M)"'],
    ]);
    const r = await done;
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.status, 494);
    assert.match(!r.ok ? r.detail : '', /NAT was detected but Security-Client offers no mod=UDP-enc-tun/);
  } finally {
    await p.close();
  }
});
