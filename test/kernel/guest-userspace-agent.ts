// Guest helper in netns "u": our UserspaceBackend (raw ESP socket for transport, UDP 4500 for
// UDP-enc-tun) with the userspace half of each SA set, driven by the orchestrator over JSON lines.
// It also keeps the last ESP packet seen per SPI each way, to replay it (ours) or hand it over (the kernel's).
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import { openRawEsp, type RawEspSocket } from '../../src/ipsec/backends/raw-esp.ts';
import type { ProtectedEndpoint } from '../../src/ipsec/backends/backend.ts';
import { parseWire } from '../../src/ipsec/esp/index.ts';
import { expandKeys } from '../../src/ipsec/keys.ts';
import { createSaSet, type SaSet } from '../../src/ipsec/sa-set.ts';
import type { SaName } from '../../src/ipsec/sa.ts';
import { NAT_T_PORT } from '../../src/ipsec/types.ts';
import { fromHex } from '../../src/util/bytes.ts';
import { serve } from './guest-rpc.ts';
import type { OurSa, ReceivedMessage, SetSpec } from './interop-grid.ts';
import { systemClock } from '../../src/util/clock.ts';

const backends = new Map<string, UserspaceBackend>();
const endpoints = new Map<string, ProtectedEndpoint>();
const sets = new Map<string, SaSet>();
const received: ReceivedMessage[] = [];
/** Last ESP packet (SPI … ICV) per SPI, as sent by us ('out') or received from the kernel ('in'). */
const lastEsp = new Map<number, { out?: Uint8Array; in?: Uint8Array }>();
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function backendFor(localIp: string): Promise<UserspaceBackend> {
  let b = backends.get(localIp);
  if (!b) {
    b = await UserspaceBackend.create({
      localIp,
      encapPort: NAT_T_PORT,
      clock: systemClock,
      // Our own capture point: every outer packet we send or accept, parsed back to its ESP part.
      wireLog: (ip, dir) => {
        const w = parseWire(ip, { encapPorts: [NAT_T_PORT] });
        if (w.kind !== 'esp') return;
        const e = lastEsp.get(w.spi) ?? {};
        e[dir] = new Uint8Array(w.esp);
        lastEsp.set(w.spi, e);
      },
    });
    backends.set(localIp, b);
  }
  return b;
}

/**
 * One extra raw ESP socket per address, opened once and kept: raw-socket polls its fd through
 * libuv, and closing one and opening the next (same fd number) has left a send hanging.
 */
const raws = new Map<string, Promise<RawEspSocket>>();
function rawFor(localIp: string): Promise<RawEspSocket> {
  let r = raws.get(localIp);
  if (!r) {
    r = openRawEsp(localIp, () => {});
    raws.set(localIp, r);
  }
  return r;
}

async function endpointFor(b: UserspaceBackend, address: string, port: number): Promise<ProtectedEndpoint> {
  const k = `${address}|${port}`;
  let ep = endpoints.get(k);
  if (!ep) {
    ep = await b.openEndpoint({ address, port });
    ep.onMessage((bytes, ctx) =>
      received.push({
        setId: ctx.set.id,
        sa: ctx.sa.name,
        local: ctx.local,
        remote: ctx.remote,
        outerSrc: ctx.outerSrc,
        ...(ctx.outerEncapSrcPort !== undefined ? { outerEncapSrcPort: ctx.outerEncapSrcPort } : {}),
        text: Buffer.from(bytes).toString('latin1'),
      }),
    );
    endpoints.set(k, ep);
  }
  return ep;
}

interface SetupArgs {
  localIp: string;
  sets: { spec: SetSpec; ik: string; ck: string }[];
}

serve({
  /** Installs the userspace half of each set; per-set errors come back instead of failing the batch. */
  async setup({ localIp, sets: specs }: SetupArgs) {
    const b = await backendFor(localIp);
    const errors: Record<string, string> = {};
    for (const { spec, ik, ck } of specs) {
      try {
        const set = createSaSet({
          id: spec.id,
          role: spec.kernelRole === 'ue' ? 'pcscf' : 'ue',
          ue: spec.ue,
          pcscf: spec.pcscf,
          alg: spec.alg,
          ealg: spec.ealg,
          mode: spec.mode,
          replayWindow: spec.replayWindow,
          keys: expandKeys(fromHex(ik), fromHex(ck), spec.alg, spec.ealg),
        });
        await b.install(set);
        const mine = set.role === 'ue' ? spec.ue : spec.pcscf;
        await endpointFor(b, localIp, mine.portC);
        await endpointFor(b, localIp, mine.portS);
        sets.set(spec.id, set);
      } catch (e) {
        errors[spec.id] = (e as Error).message;
      }
    }
    return errors;
  },

  /** Sends each message over the named SA of its set (the endpoint on the SA's source port). */
  async send({ items }: { items: { setId: string; sa: SaName; text: string }[] }) {
    const errors: (string | null)[] = [];
    for (const it of items) {
      try {
        const set = sets.get(it.setId);
        if (!set) throw new Error(`no set ${it.setId}`);
        const p = set.sas[it.sa].params;
        const ep = endpoints.get(`${p.src}|${p.srcPort}`);
        if (!ep) throw new Error(`no endpoint ${p.src}:${p.srcPort}`);
        await ep.send(Buffer.from(it.text, 'latin1'), { address: p.dst, port: p.dstPort }, { set });
        errors.push(null);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    return errors;
  },

  received() {
    return received.splice(0);
  },

  stats() {
    const out: Record<string, OurSa[]> = {};
    for (const [id, set] of sets) {
      out[id] = set
        .summary()
        .map((r) => ({ name: r.name, direction: r.direction, spi: r.spi, seq: r.seq, packets: r.packets, drops: { ...r.drops } }));
    }
    const counters: Record<string, number> = {};
    for (const b of backends.values()) for (const [k, v] of Object.entries(b.counters)) counters[k] = (counters[k] ?? 0) + v;
    return { sets: out, counters };
  },

  /** The last ESP packet the kernel sent us on this SPI (base64), for the orchestrator to replay from netns k. */
  lastInbound({ spi }: { spi: number }) {
    const e = lastEsp.get(spi)?.in;
    if (!e) throw new Error(`no inbound ESP packet seen for SPI 0x${spi.toString(16)}`);
    return b64(e);
  },

  /**
   * Resends our last ESP packet of an outbound SA towards the kernel: byte for byte (a replay), or
   * with its sequence number moved `seqDelta` ahead and the ICV left alone (a forgery). Transport
   * over a second raw protocol-50 socket; UDP-enc-tun from a fresh UDP socket to the kernel's port
   * 4500 (ours is held by the backend; the kernel checks replay and ICV, not the source port).
   */
  async resendOwn({ setId, sa, seqDelta }: { setId: string; sa: SaName; seqDelta?: number }) {
    const set = sets.get(setId);
    if (!set) throw new Error(`no set ${setId}`);
    const p = set.sas[sa].params;
    const last = lastEsp.get(p.spi)?.out;
    if (!last) throw new Error(`no outbound ESP packet recorded for SPI 0x${p.spi.toString(16)}`);
    const esp = Buffer.from(last);
    if (seqDelta) esp.writeUInt32BE(esp.readUInt32BE(4) + seqDelta, 4);
    if (p.mode === 'transport') {
      await (await rawFor(p.src)).send(esp, p.dst);
    } else {
      const s = createSocket(isIP(p.dst) === 6 ? 'udp6' : 'udp4');
      try {
        await new Promise<void>((resolve, reject) =>
          s.send(esp, p.encap?.dstPort ?? NAT_T_PORT, p.dst, (e) => (e ? reject(e) : resolve())),
        );
      } finally {
        s.close();
      }
    }
    return { spi: p.spi, seq: esp.readUInt32BE(4) };
  },

  /** Removes every set (the next batch uses other ports and SPIs); endpoints and sockets stay. */
  async teardown() {
    for (const set of sets.values()) for (const b of backends.values()) if (b.sets.includes(set)) await b.remove(set);
    sets.clear();
  },
});
