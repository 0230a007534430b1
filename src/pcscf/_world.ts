// Test world for the P-CSCF tests (not a test file): a P-CSCF on a ManualClock with its own
// userspace backend, a fake S-CSCF, scripted UEs on demand, every event recorded.
import assert from 'node:assert/strict';
import { MemoryBackend, MemoryWire } from '../ipsec/backends/memory.ts';
import { UserspaceBackend } from '../ipsec/backends/userspace.ts';
import { ManualClock } from '../sip/clock.ts';
import { MemoryNetwork } from '../sip/memory-transport.ts';
import { Pcscf, PCSCF_EVENT_NAMES, type PcscfEvents, type PcscfMode } from './index.ts';
import { memoryEdge } from './server.ts';
import type { PendingLimitsConfig } from './pending-limits.ts';
import { FakeScscf, LOOP, ScriptedUe, type UeOptions } from './_test-kit.ts';

/** RFC 3261 T1 (the P-CSCF runs with the default timers). */
export const T1 = 500;

export async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/**
 * `backendSkewMs`: the backend's SAD clock runs this far ahead of the P-CSCF's (two time sources, as in production).
 * `backend`: ESP on the in-memory twin (default: no ESP sockets) or on real userspace sockets (tests that need them).
 * Plain SIP (UE ⇄ P-CSCF ⇄ fake S-CSCF) runs on an in-memory MemoryNetwork with the memory backend
 * (no socket at all but the P-CSCF's guards on its protected ports), on loopback UDP with `userspace`.
 * `sockets: false` (memory backend): the P-CSCF's edge is server.ts memoryEdge, so not even the guards.
 */
export async function world(
  o: {
    mode?: PcscfMode;
    backendSkewMs?: number;
    limits?: Partial<PendingLimitsConfig>;
    backend?: 'memory' | 'userspace';
    sockets?: false;
  } = {},
) {
  const clock = new ManualClock();
  const net = o.backend === 'userspace' ? undefined : new MemoryNetwork();
  const scscf = await FakeScscf.start(net ? { net } : {});
  const skew = o.backendSkewMs;
  const backendClock =
    skew === undefined ? clock : { now: () => clock.now() + skew, setTimer: (ms: number, fn: () => void) => clock.setTimer(ms, fn) };
  const wire = o.backend === 'userspace' ? undefined : new MemoryWire();
  const pcBackend = wire
    ? new MemoryBackend({ wire, localIp: LOOP, encapPort: 0, clock: backendClock })
    : await UserspaceBackend.create({ localIp: LOOP, encapPort: 0, clock: backendClock });
  const pcscf = await Pcscf.start({
    address: LOOP,
    port: 0,
    portC: 0,
    portS: 0,
    scscf: scscf.endpoint,
    backend: pcBackend,
    mode: o.mode ?? 'udp-enc-tun',
    clock,
    ...(o.limits && { limits: o.limits }),
    ...(net && (o.sockets === false ? { edge: memoryEdge(net) } : { transport: (onReceive) => net.bind({ address: LOOP, onReceive }) })),
  });
  const events: { name: string; ev: PcscfEvents[keyof PcscfEvents] }[] = [];
  for (const n of PCSCF_EVENT_NAMES) pcscf.on(n, (ev) => events.push({ name: n, ev }));
  const ues: ScriptedUe[] = [];
  const ue = async (u: Partial<UeOptions> = {}) => {
    const x = await ScriptedUe.create({
      pcscf: { address: LOOP, port: pcscf.port, portC: pcscf.portC, portS: pcscf.portS },
      pcEncapPort: pcBackend.encapPort,
      ...(wire && { wire }),
      ...(net && { net }),
      impi: 'alice@ims.example.org',
      impu: 'sip:alice@ims.example.org',
      ...u,
    });
    ues.push(x);
    return x;
  };
  const named = (name: string) => events.filter((e) => e.name === name).map((e) => e.ev as unknown as Record<string, unknown>);
  const close = async () => {
    await pcscf.stop();
    for (const u of ues) await u.close();
    await scscf.close();
    await pcBackend.close();
  };
  return { clock, scscf, pcBackend, pcscf, events, named, ue, close, net };
}
