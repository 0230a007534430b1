// One side (UE or P-CSCF) of the xfrm backend VM test, run inside a network namespace of the guest
// (`ip netns exec NS node xfrm-backend-peer.js`): an XfrmBackend driven by JSON lines on stdin
// ({id, cmd, …}), answering {id, ok, result | error} on stdout. Sets are named by the driver.
import { createInterface } from 'node:readline';
import { XfrmBackend } from '../../src/ipsec/backends/xfrm/backend.ts';
import type { ProtectedTcpTransport } from '../../src/ipsec/backends/xfrm/tcp.ts';
import type { Addr, ProtectedContext, ProtectedEndpoint } from '../../src/ipsec/backends/backend.ts';
import type { EncryptionAlg, IntegrityAlg } from '../../src/ipsec/algorithms.ts';
import { expandKeys } from '../../src/ipsec/keys.ts';
import { createSaSet, type SaSet, type SaSetConfig, type SaSetEvent } from '../../src/ipsec/sa-set.ts';
import type { EspMode } from '../../src/ipsec/types.ts';
import { systemClock } from '../../src/util/clock.ts';

export interface PairOptions {
  alg: IntegrityAlg;
  ealg: EncryptionAlg;
  mode: EspMode;
  v6?: boolean;
  /** Shifts SPIs and the UE's ports (same convention as test/support/ims-fixture.ts). */
  index?: number;
  replayWindow?: number;
}

const CK = Uint8Array.from(Buffer.from('b40ba9a3c58b2a05bbf0d987b21bf8cb', 'hex'));
const IK = Uint8Array.from(Buffer.from('f769bcd751044604127672711c6d3441', 'hex'));

/** UE 192.0.2.10 / 2001:db8::10 ports 50000+2i, 50001+2i; P-CSCF .20 / ::20 ports 5062, 5064; SPIs 0x10000+0x100·i+1..4. */
export function pairConfig(o: PairOptions): Omit<SaSetConfig, 'role'> {
  const i = o.index ?? 0;
  const base = 0x10000 + i * 0x100;
  return {
    ue: { ip: o.v6 ? '2001:db8::10' : '192.0.2.10', portC: 50000 + 2 * i, portS: 50001 + 2 * i, spiC: base + 1, spiS: base + 2 },
    pcscf: { ip: o.v6 ? '2001:db8::20' : '192.0.2.20', portC: 5062, portS: 5064, spiC: base + 3, spiS: base + 4 },
    alg: o.alg,
    ealg: o.ealg,
    keys: expandKeys(IK, CK, o.alg, o.ealg),
    mode: o.mode,
    ...(o.replayWindow ? { replayWindow: o.replayWindow } : {}),
  };
}

interface Got {
  text: string;
  set: string | undefined;
  sa: string;
  remote: Addr;
  outerSrc: string;
  outerEncapSrcPort?: number;
}

let backend: XfrmBackend | undefined;
const sets = new Map<string, SaSet>();
const names = new Map<SaSet, string>();
const udp = new Map<number, ProtectedEndpoint>();
const tcp = new Map<number, ProtectedTcpTransport>();
const tcpByAddr = new Map<string, ProtectedTcpTransport>();
const opened = new Set<ProtectedEndpoint>();
const events: unknown[] = [];
const inbox = new Map<string, Got[]>();
const waiters = new Map<string, () => void>();

function deliver(box: string, bytes: Uint8Array, ctx: ProtectedContext): void {
  const got: Got = {
    text: Buffer.from(bytes).toString(),
    set: names.get(ctx.set),
    sa: ctx.sa.name,
    remote: ctx.remote,
    outerSrc: ctx.outerSrc,
    ...(ctx.outerEncapSrcPort !== undefined ? { outerEncapSrcPort: ctx.outerEncapSrcPort } : {}),
  };
  (inbox.get(box) ?? inbox.set(box, []).get(box)!).push(got);
  waiters.get(box)?.();
}

async function expect(box: string, timeoutMs: number): Promise<Got> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const q = inbox.get(box);
    if (q && q.length) return q.shift()!;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`nothing arrived on ${box} within ${timeoutMs} ms`);
    await new Promise<void>((r) => {
      const t = setTimeout(r, left);
      waiters.set(box, () => {
        clearTimeout(t);
        r();
      });
    });
  }
}

const b = () =>
  backend ??
  (() => {
    throw new Error('no backend: send create first');
  })();
const set = (name: string) =>
  sets.get(name) ??
  (() => {
    throw new Error(`no set ${name}`);
  })();

type Args = Record<string, unknown> & { cmd: string };

async function run(a: Args): Promise<unknown> {
  switch (a.cmd) {
    case 'create':
      backend = await XfrmBackend.create({
        instance: (a.instance as number | undefined) ?? 1,
        clock: systemClock,
        ...(a.keepaliveMs !== undefined ? { keepaliveMs: a.keepaliveMs as number } : {}),
        onKernelEvent: (e) => events.push({ ...e, set: names.get(e.set), sa: e.sa.name }),
      });
      return { tag: backend.tag };
    case 'counters':
      return b().counters;
    case 'events':
      return events.splice(0);
    case 'reconcile':
      return b().reconcile();
    case 'install': {
      // `uePorts`: a re-registration that keeps port_us (and so shares the pc↔us pair with the old set).
      const c = pairConfig(a.pair as PairOptions);
      const ports = a.uePorts as { portC: number; portS: number } | undefined;
      const s = createSaSet({ ...c, ue: { ...c.ue, ...(ports ?? {}) }, role: a.role as 'ue' | 'pcscf' });
      if (a.expiresInS !== undefined) s.setLifetime({ expiresAt: systemClock.now() + (a.expiresInS as number) * 1000 });
      sets.set(a.name as string, s);
      names.set(s, a.name as string);
      await b().install(s);
      return { spis: s.all.map((sa) => sa.spi) };
    }
    case 'remove':
      await b().remove(set(a.name as string));
      return null;
    case 'event':
      set(a.name as string).apply(a.event as SaSetEvent);
      b().refresh(set(a.name as string));
      return set(a.name as string).state;
    case 'lifetime':
      set(a.name as string).setLifetime({ expiresAt: systemClock.now() + (a.expiresInS as number) * 1000 });
      b().refresh(set(a.name as string));
      return null;
    case 'query':
      return b().query(set(a.name as string));
    case 'allocate':
      return b().allocateSpis(a.localIp as string, a.n as number);
    case 'setPeerEncap':
      b().setPeerEncap(set(a.name as string), a.peer as Addr);
      return null;
    case 'udpOpen': {
      const ep = await b().openEndpoint(a.local as Addr);
      if (!opened.has(ep)) ep.onMessage((bytes, ctx) => deliver(`udp:${ep.local.port}`, bytes, ctx));
      opened.add(ep);
      udp.set(ep.local.port, ep);
      return ep.local;
    }
    case 'udpSend': {
      const ep =
        udp.get(a.port as number) ??
        (() => {
          throw new Error(`no UDP endpoint ${String(a.port)}`);
        })();
      const used = await ep.send(Buffer.from(a.text as string), a.to as Addr, a.set ? { set: set(a.set as string) } : {});
      return names.get(used);
    }
    case 'tcpOpen': {
      const local = a.local as Addr;
      const again = tcpByAddr.get(`${local.address}|${local.port}`);
      if (again) {
        tcp.set(local.port, again);
        return null;
      }
      const t = await b().openTcp({
        local,
        role: a.role as 'server' | 'client',
        onReceive: (bytes, ctx) => deliver(`tcp:${local.port}`, bytes, ctx.via as ProtectedContext),
      });
      tcp.set(local.port, t);
      tcpByAddr.set(`${local.address}|${local.port}`, t);
      return null;
    }
    case 'tcpSend':
      await (
        tcp.get(a.port as number) ??
        (() => {
          throw new Error(`no TCP transport ${String(a.port)}`);
        })()
      ).send(Buffer.from(a.text as string), a.to as Addr);
      return null;
    case 'expect':
      return expect(a.box as string, (a.timeoutMs as number | undefined) ?? 5000);
    case 'close':
      for (const t of tcpByAddr.values()) await t.close();
      tcp.clear();
      tcpByAddr.clear();
      udp.clear();
      opened.clear();
      await b().close();
      backend = undefined;
      return null;
    case 'exit':
      setImmediate(() => process.exit(0));
      return null;
    default:
      throw new Error(`unknown command ${a.cmd}`);
  }
}

// Commands run one after another, in arrival order.
let chain: Promise<void> = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  const a = JSON.parse(line) as Args & { id: number };
  chain = chain.then(async () => {
    try {
      const result = await run(a);
      process.stdout.write(`${JSON.stringify({ id: a.id, ok: true, result })}\n`);
    } catch (e) {
      const err = e as Error & { code?: string; errno?: number };
      process.stdout.write(
        `${JSON.stringify({ id: a.id, ok: false, error: { message: err.message, code: err.code, errno: err.errno } })}\n`,
      );
    }
  });
});
process.stdin.on('end', () => void chain.then(() => process.exit(0)));
