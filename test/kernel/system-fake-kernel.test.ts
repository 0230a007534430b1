// Host, no ESP: the whole system (S-CSCF, P-CSCF, UE) on loopback with both IPsec ends on the xfrm
// backend over an in-memory SAD/SPD (src/ipsec/backends/xfrm/_fake-kernel.ts), so SIP crosses in
// clear text but every routing decision is the real one: SIP over TCP through the SA sets (spec
// digest §6.2) — UE requests on port_uc → port_ps, P-CSCF requests on port_pc → port_us.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeKernel } from '../../src/ipsec/backends/xfrm/_fake-kernel.ts';
import { XfrmBackend } from '../../src/ipsec/backends/xfrm/backend.ts';
import type { IpsecBackend } from '../../src/ipsec/backends/backend.ts';
import { protectedContextOf } from '../../src/ipsec/backends/sip-endpoint.ts';
import { Pcscf } from '../../src/pcscf/pcscf.ts';
import { Hss } from '../../src/scscf/hss.ts';
import { HssStore } from '../../src/scscf/hss-store.ts';
import { Scscf } from '../../src/scscf/scscf.ts';
import type { AlgPair } from '../../src/secagree/index.ts';
import { Ue } from '../../src/ue/ue.ts';
import { fromHex } from '../../src/util/bytes.ts';
import { DOMAIN, K, OPC, subscriber } from '../support/ims-world.ts';
import { systemClock } from '../../src/util/clock.ts';

const IP = '127.0.0.1';

interface Seen {
  side: string;
  port: number;
  protocol: string;
  sa: string;
  line: string;
}

/** An xfrm backend on a fake kernel whose TCP transports log what they deliver (and over which SA). */
async function fakeXfrm(side: string, instance: number, seen: Seen[]): Promise<XfrmBackend> {
  const b = await XfrmBackend.create({ transport: new FakeKernel(), instance, clock: systemClock });
  const open = b.openTcp.bind(b);
  b.openTcp = (o) =>
    open({
      ...o,
      onReceive: (bytes, ctx) => {
        const line = new TextDecoder().decode(bytes.subarray(0, 60)).split('\r\n')[0]!;
        seen.push({ side, port: ctx.local.port, protocol: ctx.protocol, sa: protectedContextOf(ctx)?.sa.name ?? '-', line });
        o.onReceive(bytes, ctx);
      },
    });
  return b;
}

async function world(transport: 'udp' | 'tcp' | 'auto', offers?: AlgPair[]) {
  const seen: Seen[] = [];
  const store = new HssStore(':memory:');
  const s = subscriber(1);
  store.add({ impi: s.impi, impus: [s.impu], k: fromHex(K), opc: fromHex(OPC), amf: fromHex('8000') });
  const scscf = await Scscf.start({ address: IP, port: 0, domain: DOMAIN, hss: new Hss(store) });
  const pcB = await fakeXfrm('pcscf', 1, seen);
  const pcscf = await Pcscf.start({
    address: IP,
    port: 0,
    portC: 0,
    portS: 0,
    scscf: scscf.local,
    backend: pcB,
    mode: 'trans',
    policy: { allowDeprecated: true },
  });
  const ueB = await fakeXfrm('ue', 2, seen);
  const ue = await Ue.create({
    impi: s.impi,
    impu: s.impu,
    pcscf: { address: IP, port: pcscf.port },
    localIp: IP,
    k: fromHex(K),
    opc: fromHex(OPC),
    modes: ['trans'],
    backend: ueB,
    transport,
    reRegister: 'off',
    expires: 3600,
    ...(offers && { offers }),
  });
  const close = async () => {
    await ue.close();
    await pcscf.stop();
    await scscf.stop();
    await ueB.close();
    await pcB.close();
    store.close();
  };
  return { seen, scscf, pcscf, ue, ueB, pcB, impu: s.impu, close };
}

test('SIP over TCP through xfrm SA sets (fake kernel): register, MESSAGE both ways, re-register, de-register', async () => {
  const w = await world('tcp');
  try {
    const r = await w.ue.register();
    assert.ok(r.ok, JSON.stringify(r));
    const set1 = w.ue.sas.current!;
    const { portC: uc, portS: us } = set1.config.ue;
    const { portC: pc, portS: ps } = set1.config.pcscf;
    // The protected REGISTER went on the UE's connection from port_uc to port_ps (SA1), the 200 OK came back on it (SA3).
    assert.ok(
      w.seen.some((x) => x.side === 'pcscf' && x.port === ps && x.sa === 'SA1' && x.line.startsWith('REGISTER')),
      JSON.stringify(w.seen),
    );
    assert.ok(
      w.seen.some((x) => x.side === 'ue' && x.port === uc && x.sa === 'SA3' && x.line.startsWith('SIP/2.0 200')),
      JSON.stringify(w.seen),
    );

    const res = await w.ue.sendMessage(`sip:echo@${DOMAIN}`, 'over tcp');
    assert.equal(res.status, 200);
    assert.match(res.headers.getAll('Via').at(-1)!, /^SIP\/2\.0\/TCP /, 'the UE names TCP in its Via');

    const got: string[] = [];
    w.ue.on('request', (i) => got.push(i.request.headers.get('Via')!));
    const down = await w.scscf.sendMessage(w.impu, 'to the UE over tcp');
    assert.equal(down.status, 200);
    assert.match(got[0]!, new RegExp(`^SIP/2\\.0/TCP ${IP}:${pc};`), 'the P-CSCF names TCP and port_pc in its Via');
    assert.ok(
      w.seen.some((x) => x.side === 'ue' && x.port === us && x.sa === 'SA2' && x.line.startsWith('MESSAGE')),
      'MESSAGE over SA2 at port_us',
    );
    assert.ok(
      w.seen.some((x) => x.side === 'pcscf' && x.port === pc && x.sa === 'SA4' && x.line.startsWith('SIP/2.0 200')),
      '200 over SA4 at port_pc',
    );

    const rr = await w.ue.reRegister();
    assert.ok(rr.ok, JSON.stringify(rr));
    const set2 = w.ue.sas.current!;
    assert.notEqual(set2, set1);
    assert.equal(set2.config.ue.portS, us, 'port_us kept');
    assert.equal((await w.ue.sendMessage(`sip:echo@${DOMAIN}`, 'after re-registration')).status, 200);
    assert.equal((await w.scscf.sendMessage(w.impu, 'again')).status, 200);

    assert.ok((await w.ue.deregister()).ok);
    assert.equal(w.pcB.sets.length, 0, 'the P-CSCF removed every set');
    assert.equal(w.ueB.sets.length, 0, 'the UE removed every set');
    assert.equal(w.seen.filter((x) => x.protocol !== 'tcp').length, 0);
  } finally {
    await w.close();
  }
});

test('transport auto: the ~1,450-octet protected REGISTER goes over TCP, and so does every later request of that registration (its flow)', async () => {
  const w = await world('auto');
  const steps: string[] = [];
  w.ue.on('step', (t) => steps.push(t));
  try {
    assert.ok((await w.ue.register()).ok);
    assert.ok(
      steps.some((t) => /REGISTER is \d+ octets: over TCP inside the SAs/.test(t)),
      steps.join('\n'),
    );
    const res = await w.ue.sendMessage(`sip:echo@${DOMAIN}`, 'small');
    assert.equal(res.status, 200);
    // A ~600-octet MESSAGE: by size it would be UDP; the registration went over TCP, so it does too.
    assert.match(res.headers.getAll('Via').at(-1)!, /^SIP\/2\.0\/TCP /, 'the MESSAGE went over TCP');
    assert.ok(
      steps.some((t) => /MESSAGE over TCP inside the SAs: the registration went over TCP/.test(t)),
      steps.join('\n'),
    );
    assert.ok(
      w.seen.some((x) => x.side === 'pcscf' && x.sa === 'SA1' && x.line.startsWith('MESSAGE')),
      JSON.stringify(w.seen),
    );
    assert.equal((await w.scscf.sendMessage(w.impu, 'down')).status, 200);
    assert.ok((await w.ue.deregister()).ok);
    assert.equal(w.seen.filter((x) => x.protocol !== 'tcp').length, 0);
  } finally {
    await w.close();
  }
});

test('transport auto with one offer: the REGISTER stays under 1,300 octets and everything stays on UDP', async () => {
  const w = await world('auto', [{ alg: 'hmac-sha-1-96', ealg: 'aes-cbc' }]);
  try {
    assert.ok((await w.ue.register()).ok);
    assert.equal((await w.ue.sendMessage(`sip:echo@${DOMAIN}`, 'udp')).status, 200);
    assert.ok((await w.ue.deregister()).ok);
    assert.deepEqual(w.seen, [], 'nothing over TCP');
  } finally {
    await w.close();
  }
});

test('the same over UDP: nothing goes over TCP (the default)', async () => {
  const w = await world('udp');
  try {
    assert.ok((await w.ue.register()).ok);
    assert.equal((await w.ue.sendMessage(`sip:echo@${DOMAIN}`, 'udp')).status, 200);
    assert.equal((await w.scscf.sendMessage(w.impu, 'udp down')).status, 200);
    assert.ok((await w.ue.deregister()).ok);
    assert.deepEqual(w.seen, []);
  } finally {
    await w.close();
  }
});

test('transport tcp over the userspace backend is refused with a clear error', async () => {
  const backend = { name: 'userspace' } as unknown as IpsecBackend;
  const s = subscriber(1);
  await assert.rejects(
    Ue.create({
      impi: s.impi,
      impu: s.impu,
      pcscf: { address: IP },
      localIp: IP,
      k: fromHex(K),
      opc: fromHex(OPC),
      backend,
      transport: 'tcp',
    }),
    /transport tcp: the userspace backend carries SIP over UDP only/,
  );
});
