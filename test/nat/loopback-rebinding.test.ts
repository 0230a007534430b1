// Rebinding without a lab (runs anywhere, no root): a tiny port-translating UDP relay on loopback
// stands in for the NAT between the UE's encapsulation socket and the P-CSCF's. When the relay
// takes a new outside port, the P-CSCF must keep port_Uenc for keepalives and replayed packets and
// move every SA of the registration after the first authenticated packet (spec digest §15A.6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import { startWorld, subscriber, until } from '../support/ims-world.ts';
import { systemClock } from '../../src/util/clock.ts';

/** UE → `inside` port; forwards from its current `outside` socket to the P-CSCF, and back. */
class Relay {
  inside!: Socket;
  outside!: Socket;
  ue: { address: string; port: number } | undefined;
  last: Buffer | undefined;
  constructor(
    private readonly ip: string,
    private readonly target: number,
  ) {}
  async start(): Promise<void> {
    this.inside = await bound(this.ip);
    this.inside.on('message', (m, r) => {
      this.ue = { address: r.address, port: r.port };
      if (m.length > 1) this.last = Buffer.from(m);
      this.outside.send(m, this.target, this.ip);
    });
    await this.rebind();
  }
  /** A new outside socket (port): what a NAT does when it forgets a mapping. */
  async rebind(): Promise<void> {
    const old = this.outside;
    this.outside = await bound(this.ip);
    this.outside.on('message', (m) => this.ue && this.inside.send(m, this.ue.port, this.ue.address));
    old?.close();
  }
  get outsidePort(): number {
    return this.outside.address().port;
  }
  close(): void {
    this.inside.close();
    this.outside.close();
  }
}

async function bound(ip: string): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, ip, () => r()));
  return s;
}

test('P-CSCF port_Uenc: learnt from traffic, kept for keepalives and replays, moved by the first authenticated packet from a new port', async () => {
  const w = await startWorld({ mode: 'udp-enc-tun' });
  const relay = new Relay(w.ip, w.pcBackend.encapPort);
  await relay.start();
  const backend = await UserspaceBackend.create({ localIp: w.ip, encapPort: 0, keepaliveMs: 150, clock: systemClock });
  const moves: { port: number; previous?: { port: number } }[] = [];
  w.pcscf.on('nat-mapping', (e) => moves.push(e));
  try {
    const ue = await w.ue(1, { backend, pcscfEncapPort: relay.inside.address().port });
    assert.ok((await ue.register()).ok);
    const encap = () => w.pcscf.registrations()[0]?.ue.encap?.port;
    assert.equal(encap(), relay.outsidePort, 'port_Uenc = the relay outside port, not the UE socket');
    const p1 = relay.outsidePort;

    await relay.rebind();
    const ka = w.pcBackend.counters.keepalive;
    await until(() => w.pcBackend.counters.keepalive > ka, 'a keepalive through the new outside port', 3000);
    assert.equal(encap(), p1, 'a keepalive does not move port_Uenc');
    // A replay of the UE's last ESP packet from the new outside port: dropped, nothing moves.
    relay.outside.send(relay.last!, w.pcBackend.encapPort, w.ip);
    const sa1 = () => w.pcBackend.sets.find((s) => s.live && s.state === 'current')!.sas.SA1.counters.drops.replay;
    await until(() => sa1() === 1, 'the replay dropped');
    assert.equal(encap(), p1, 'a replayed packet does not move port_Uenc');
    assert.equal(moves.length, 0, 'no move so far');

    assert.equal((await ue.sendMessage(`sip:echo@${subscriber(1).impu.split('@')[1]}`, 'moved?')).status, 200);
    assert.equal(encap(), relay.outsidePort, 'moved with the authenticated MESSAGE');
    assert.deepEqual(
      moves.map((m) => [m.previous?.port, m.port]),
      [[p1, relay.outsidePort]],
    );
    const got: string[] = [];
    ue.onRequest((r) => void got.push(Buffer.from(r.request.body).toString()));
    assert.equal((await w.scscf.sendMessage(subscriber(1).impu, 'to the new port')).status, 200);
    assert.deepEqual(got, ['to the new port']);
  } finally {
    await w.close();
    await backend.close();
    relay.close();
  }
});
