// Test helper (not a test file): a scripted P-CSCF + S-CSCF on loopback for the UE tests. It has
// its own UserspaceBackend, builds its side of each SA set with createSaSet({role: 'pcscf'}),
// computes vectors with the aka layer and answers exactly what the test tells it to.
import { buildNonce, generateVector, parseDigestHeaderOrThrow, paramRecord, type AuthVector } from '../aka/index.ts';
import type { ProtectedContext, ProtectedEndpoint } from '../ipsec/backends/backend.ts';
import { MemoryBackend, MemoryWire } from '../ipsec/backends/memory.ts';
import { UserspaceBackend } from '../ipsec/backends/userspace.ts';
import { createSaSet, expandKeys, type EspMode, type SaSet } from '../ipsec/index.ts';
import type { EncryptionAlg, IntegrityAlg } from '../ipsec/algorithms.ts';
import { parseSecurityHeaderOrThrow } from '../secagree/index.ts';
import {
  createRequest,
  createResponse,
  formatHostPort,
  newBranch,
  parseMessage,
  parseViaOrThrow,
  serializeMessage,
  type SipMessage,
  type SipRequest,
  type SipResponse,
  type ReceiveHandler,
  type SipTransport,
} from '../sip/index.ts';
import { MemoryNetwork } from '../sip/memory-transport.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import { systemClock } from '../util/clock.ts';

export interface Received {
  readonly req: SipRequest;
  readonly remote: { address: string; port: number };
  /** Set when it came over an SA. */
  readonly pctx?: ProtectedContext;
}

export interface ChallengeOptions {
  /** The Security-Server value to send; null: none at all. Default: built for the new set. */
  readonly securityServer?: string | null;
  /** K the "network" uses (a wrong one makes the UE's MAC check fail). */
  readonly k?: Uint8Array;
  readonly sqn?: number;
  readonly alg?: IntegrityAlg;
  readonly ealg?: EncryptionAlg;
  readonly qop?: boolean;
}

export interface Challenge {
  readonly vector: AuthVector;
  readonly nonce: string;
  readonly securityServer: string | null;
  readonly set?: SaSet;
}

export class FakePcscf {
  readonly #queue: Received[] = [];
  readonly #waiters: ((r: Received) => void)[] = [];
  readonly #seen = new Set<string>();
  readonly #responseWaiters = new Map<string, (r: SipResponse, pctx?: ProtectedContext) => void>();
  readonly portPc = 31000 + Math.floor(Math.random() * 900) * 2;
  readonly portPs = this.portPc + 1;
  sqn = 0x20;
  #plain!: SipTransport;
  #pc!: ProtectedEndpoint;
  #ps!: ProtectedEndpoint;

  private constructor(
    readonly ip: string,
    readonly backend: UserspaceBackend | MemoryBackend,
    readonly k: Uint8Array,
    readonly opc: Uint8Array,
    readonly mode: EspMode,
    readonly ueEncapPort: () => number,
  ) {}

  /** `wire`: ESP over the in-memory twin (no ESP sockets); default: a userspace backend on loopback. */
  static async create(o: {
    ip?: string;
    k: Uint8Array;
    opc: Uint8Array;
    mode?: EspMode;
    ueEncapPort: () => number;
    wire?: MemoryWire;
    /** Plain SIP on this MemoryNetwork (no socket); default: a UDP socket on loopback. */
    net?: MemoryNetwork;
  }): Promise<FakePcscf> {
    const ip = o.ip ?? '127.0.0.1';
    const backend = o.wire
      ? new MemoryBackend({ wire: o.wire, localIp: ip, encapPort: 0, clock: systemClock })
      : await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: systemClock });
    const f = new FakePcscf(ip, backend, o.k, o.opc, o.mode ?? 'udp-enc-tunnel', o.ueEncapPort);
    const onReceive: ReceiveHandler = (b, c) => f.#in(b, c.remote);
    f.#plain = o.net ? o.net.bind({ address: ip, onReceive }) : await openUdpTransport({ address: ip, port: 0, onReceive });
    f.#pc = await backend.openEndpoint({ address: ip, port: f.portPc });
    f.#ps = await backend.openEndpoint({ address: ip, port: f.portPs });
    for (const ep of [f.#pc, f.#ps]) ep.onMessage((b, pctx) => f.#in(b, pctx.remote, pctx));
    return f;
  }

  get port(): number {
    return this.#plain.local.port;
  }

  #in(bytes: Uint8Array, remote: { address: string; port: number }, pctx?: ProtectedContext): void {
    const parsed = parseMessage(bytes);
    if (!parsed.ok) return;
    const m: SipMessage = parsed.value;
    if (m.kind === 'response') {
      const branch = parseViaOrThrow(m.headers.get('Via')!).params.get('branch') as string;
      this.#responseWaiters.get(branch)?.(m, pctx);
      return;
    }
    // A retransmission (same branch and method, RFC 3261 §17.2.3) is not a new request.
    const key = `${parseViaOrThrow(m.headers.get('Via')!).params.get('branch')}|${m.method}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const r: Received = { req: m, remote, ...(pctx && { pctx }) };
    const w = this.#waiters.shift();
    if (w) w(r);
    else this.#queue.push(r);
  }

  /** The next request the UE sent (fails the test after `ms`). */
  next(ms = 3000): Promise<Received> {
    const q = this.#queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const w = (r: Received): void => {
        clearTimeout(t);
        resolve(r);
      };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error('fake P-CSCF: no request from the UE'));
      }, ms);
      this.#waiters.push(w);
    });
  }

  /** Nothing arrives within `ms` (for "the UE stopped" checks). */
  async silent(ms = 300): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Answers `rx` the way it came: over its SA set (port_pc → Via port) or unprotected to its source. */
  async respond(rx: Received, res: SipResponse, over?: SaSet): Promise<void> {
    const set = over ?? rx.pctx?.set;
    if (set) {
      const via = parseViaOrThrow(rx.req.headers.get('Via')!);
      await this.#pc.send(serializeMessage(res), { address: rx.remote.address, port: via.port ?? 5060 }, { set });
    } else {
      await this.#plain.send(serializeMessage(res), rx.remote);
    }
  }

  /** Answers `rx` in clear text to the port it came from (Kamailio 5.6's de-registration answer). */
  async replyInClear(rx: Received, status: number): Promise<void> {
    await this.#plain.send(serializeMessage(createResponse(rx.req, status)), rx.remote);
  }

  reply(rx: Received, status: number, headers: [string, string][] = [], over?: SaSet): Promise<void> {
    return this.respond(rx, createResponse(rx.req, status, undefined, headers), over);
  }

  /** The 401 of 33.203 §7.2 with a fresh vector; the P-CSCF side of the temporary set installed. */
  async challenge(rx: Received, o: ChallengeOptions = {}): Promise<Challenge> {
    const sqn = o.sqn ?? ++this.sqn;
    const vector = generateVector({ k: o.k ?? this.k, opc: this.opc, sqn, amf: new Uint8Array([0x80, 0]) });
    const nonce = buildNonce(vector.rand, vector.autn);
    let set: SaSet | undefined;
    let ss = o.securityServer;
    if (ss === undefined) {
      const alg = o.alg ?? 'hmac-sha-1-96';
      const ealg = o.ealg ?? 'aes-cbc';
      const sc = parseSecurityHeaderOrThrow(rx.req.headers.getAll('Security-Client'), 'Security-Client')[0]!;
      const [spiC, spiS] = this.backend.allocateSpis(this.ip, 2) as [number, number];
      const mod = this.mode === 'transport' ? 'trans' : 'UDP-enc-tun';
      ss = `ipsec-3gpp;q=0.1;prot=esp;mod=${mod};spi-c=${spiC};spi-s=${spiS};port-c=${this.portPc};port-s=${this.portPs};alg=${alg};ealg=${ealg}`;
      set = createSaSet({
        role: 'pcscf',
        ue: { ip: rx.remote.address, portC: sc.portC!, portS: sc.portS!, spiC: sc.spiC!, spiS: sc.spiS! },
        pcscf: { ip: this.ip, portC: this.portPc, portS: this.portPs, spiC, spiS },
        alg,
        ealg,
        keys: expandKeys(vector.ik, vector.ck, alg, ealg),
        mode: this.mode,
        ...(this.mode === 'udp-enc-tunnel' && { encap: { uePort: this.ueEncapPort(), pcscfPort: this.backend.encapPort } }),
      });
      await this.backend.install(set);
    }
    const qop = o.qop === false ? '' : ', qop="auth"';
    const headers: [string, string][] = [['WWW-Authenticate', `Digest realm="ims.example", nonce="${nonce}", algorithm=AKAv1-MD5${qop}`]];
    if (ss !== null) headers.push(['Security-Server', ss]);
    await this.reply(rx, 401, headers);
    return { vector, nonce, securityServer: ss, ...(set && { set }) };
  }

  /** The 200 OK to a protected REGISTER, over `set` (SA2: port_pc → port_us). */
  async ok(rx: Received, set: SaSet, expires = 600): Promise<void> {
    const contact = rx.req.headers.get('Contact')!.replace(/;expires=\d+/, '');
    await this.reply(
      rx,
      200,
      [
        ['Contact', `${contact};expires=${expires}`],
        ['Service-Route', '<sip:orig@127.0.0.1:6060;lr>'],
        ['P-Associated-URI', '<sip:alice@ims.example>, <tel:+15550100>'],
      ],
      set,
    );
  }

  /** A request to the UE over SA2 of `set` (port_pc → port_us); resolves with the UE's answer. */
  request(set: SaSet, method: string, body = 'hello'): Promise<{ res: SipResponse; sent: SipRequest; pctx?: ProtectedContext }> {
    const branch = newBranch();
    const portUs = set.config.ue.portS;
    const ueIp = set.config.ue.ip;
    const sent = createRequest({
      method,
      uri: `sip:alice@${formatHostPort(ueIp, portUs)}`,
      via: `SIP/2.0/UDP ${formatHostPort(this.ip, this.portPc)};branch=${branch}`,
      from: '<sip:bob@ims.example>;tag=f1',
      to: '<sip:alice@ims.example>',
      callId: `c-${branch}`,
      cseq: 1,
      headers: [['Content-Type', 'text/plain']],
      body: new TextEncoder().encode(body),
    });
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fake P-CSCF: no answer to ${method}`)), 3000);
      this.#responseWaiters.set(branch, (res, pctx) => {
        clearTimeout(t);
        resolve({ res, sent, ...(pctx && { pctx }) });
      });
      this.#pc.send(serializeMessage(sent), { address: ueIp, port: portUs }, { set }).catch(reject);
    });
  }

  /** Sends an unprotected request to the UE's plain socket (which must drop it). */
  async plainRequest(to: { address: string; port: number }, method: string): Promise<void> {
    const req = createRequest({
      method,
      uri: `sip:alice@${formatHostPort(to.address)}`,
      via: `SIP/2.0/UDP ${formatHostPort(this.ip, this.port)};branch=${newBranch()}`,
      from: '<sip:evil@ims.example>;tag=e',
      to: '<sip:alice@ims.example>',
      callId: 'plain-1',
      cseq: 1,
    });
    await this.#plain.send(serializeMessage(req), to);
  }

  async close(): Promise<void> {
    await this.#plain.close();
    await this.backend.close();
  }
}

/** The Authorization parameters of a request (lower-cased names). */
export function authParams(req: SipRequest): Record<string, string> {
  return paramRecord(parseDigestHeaderOrThrow(req.headers.get('Authorization') ?? 'Digest'));
}

// ---- a UE and a fake P-CSCF wired together ------------------------------------------------------

/** TS 35.208 Test Set 1. */
export const K = new Uint8Array(Buffer.from('465b5ce8b199b49faa5f0a2ee238a6bc', 'hex'));
export const OPC = new Uint8Array(Buffer.from('cd63cb71954a9f4e48a5994e37a02baf', 'hex'));

export interface Pair {
  readonly ue: import('./ue.ts').Ue;
  readonly fake: FakePcscf;
  readonly ueBackend: UserspaceBackend | MemoryBackend;
  readonly steps: string[];
  readonly traces: import('../util/trace.ts').SipTraceEvent[];
  close(): Promise<void>;
}

/**
 * A UE (UDP-enc-tun offers, fast SIP timers) registered against nothing yet, and its fake P-CSCF.
 * ESP runs on the in-memory twin (no ESP sockets, transport mode without root) and plain SIP on a
 * MemoryNetwork (no socket at all) unless `esp` is 'userspace' (real sockets for both).
 */
export async function startPair(
  o: Partial<import('./ue-types.ts').UeOptions> = {},
  mode: EspMode = 'udp-enc-tunnel',
  ip = '127.0.0.1',
  esp: 'memory' | 'userspace' = 'memory',
): Promise<Pair> {
  const { Ue } = await import('./ue.ts');
  const clock = o.clock ?? systemClock;
  const wire = esp === 'memory' ? new MemoryWire() : undefined;
  const ueBackend = wire
    ? new MemoryBackend({ wire, localIp: ip, encapPort: 0, clock })
    : await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock });
  const net = wire ? new MemoryNetwork() : undefined;
  const fake = await FakePcscf.create({ ip, k: K, opc: OPC, mode, ueEncapPort: () => ueBackend.encapPort, ...(wire && { wire, net }) });
  const steps: string[] = [];
  const traces: import('../util/trace.ts').SipTraceEvent[] = [];
  const ue = await Ue.create({
    impi: 'alice@ims.example',
    impu: 'sip:alice@ims.example',
    pcscf: { address: ip, port: fake.port },
    localIp: ip,
    k: K,
    opc: OPC,
    backend: ueBackend,
    pcscfEncapPort: fake.backend.encapPort,
    modes: [mode === 'transport' ? 'trans' : 'UDP-enc-tun'],
    timers: { t1: 50, t2: 200, t4: 100 },
    reRegister: 'off',
    trace: (e) => traces.push(e),
    ...(net && { openPlain: async (address, port, onReceive) => net.bind({ address, port, onReceive }) }),
    ...o,
  });
  ue.on('step', (t) => steps.push(t));
  return {
    ue,
    fake,
    ueBackend,
    steps,
    traces,
    async close() {
      await ue.close();
      await ueBackend.close();
      await fake.close();
    },
  };
}

/** Drives a full initial registration; returns the fake's view of it. */
export async function registerPair(p: Pair, expires = 600): Promise<{ r1: Received; r2: Received; ch: Challenge }> {
  const done = p.ue.register();
  const r1 = await p.fake.next();
  const ch = await p.fake.challenge(r1);
  const r2 = await p.fake.next();
  await p.fake.ok(r2, ch.set!, expires);
  const res = await done;
  if (!res.ok) throw new Error(`registration failed: ${res.reason} ${res.detail}`);
  return { r1, r2, ch };
}
