// Test kit (not a test file): a minimal scripted UE for the P-CSCF tests, with its own userspace
// backend, that sends the SIP itself (one step per message) over real loopback sockets.
import { Usim, digestResponse, getParam, parseDigestHeaderOrThrow, parseNonceOrThrow } from '../aka/index.ts';
import type { ProtectedEndpoint } from '../ipsec/backends/backend.ts';
import { attachProtected, protectedTransport } from '../ipsec/backends/sip-endpoint.ts';
import { MemoryBackend, type MemoryWire } from '../ipsec/backends/memory.ts';
import { UserspaceBackend } from '../ipsec/backends/userspace.ts';
import { expandKeys } from '../ipsec/keys.ts';
import { createSaSet, type SaSet } from '../ipsec/sa-set.ts';
import { modeFromMod } from '../ipsec/types.ts';
import {
  buildSecurityClient,
  chooseServerMechanism,
  parseSecurityHeaderOrThrow,
  serializeMechanisms,
  type AlgPair,
  type UsableMod,
} from '../secagree/index.ts';
import { createRequest, createResponse, newBranch, newCallId } from '../sip/builders.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import { TransactionLayer } from '../sip/transaction-manager.ts';
import type { ReceiveContext, SipTransport } from '../sip/transport.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import type { MemoryNetwork } from '../sip/memory-transport.ts';
import { DOMAIN, K, LOOP, OPC, request, type Answer } from './_fake-scscf.ts';
import { systemClock } from '../util/clock.ts';

export { DOMAIN, FakeScscf, K, LOOP, OPC, request, type Answer } from './_fake-scscf.ts';

// Protected UE ports are virtual (inner UDP ports inside ESP): distinct numbers are all they need.
let nextPort = 20000 + Math.floor(Math.random() * 20000);
const freshPort = () => nextPort++;

export interface UeOptions {
  readonly pcscf: { address: string; port: number; portC: number; portS: number };
  readonly pcEncapPort: number;
  readonly impi: string;
  readonly impu: string;
  /** Sent-by of the unprotected REGISTER (simulates a NAT when it differs from the real source). */
  readonly via?: { host: string; port: number };
  readonly pairs?: readonly AlgPair[];
  readonly modes?: readonly UsableMod[];
  /** Protected client port (default: random). */
  readonly portUc?: number;
  /** ESP over this in-memory wire (the P-CSCF's backend is a MemoryBackend on it); default: userspace sockets. */
  readonly wire?: MemoryWire;
  /** Plain SIP on this in-memory network (the P-CSCF's plain transport is bound on it); default: a loopback UDP socket. */
  readonly net?: MemoryNetwork;
}

/** A scripted UE: one step per message, everything visible to the test. */
export class ScriptedUe {
  readonly incoming: { req: SipRequest; ctx: ReceiveContext }[] = [];
  readonly usim = new Usim({ k: K, opc: OPC, acceptAnySqn: true });
  portUc: number;
  readonly portUs = freshPort();
  spis: [number, number];
  callId = newCallId();
  cseq = 1;
  clientHeader = '';
  serverHeader?: string;
  /** The set being set up (after a 401) and the set in use (after a 200). */
  temporary?: SaSet;
  current?: SaSet;
  nonce = '';
  res?: Uint8Array;
  readonly #eps = new Map<number, ProtectedEndpoint>();

  private constructor(
    readonly o: UeOptions,
    readonly backend: UserspaceBackend | MemoryBackend,
    readonly layer: TransactionLayer,
    readonly plain: SipTransport,
  ) {
    this.portUc = o.portUc ?? freshPort();
    this.spis = backend.allocateSpis(LOOP, 2) as [number, number];
  }

  static async create(o: UeOptions): Promise<ScriptedUe> {
    const backend = o.wire
      ? new MemoryBackend({ wire: o.wire, localIp: LOOP, encapPort: 0, clock: systemClock })
      : await UserspaceBackend.create({ localIp: LOOP, encapPort: 0, clock: systemClock });
    let self: ScriptedUe | undefined;
    const layer = new TransactionLayer({
      user: {
        onRequest: (tx, req, ctx) => {
          self!.incoming.push({ req, ctx });
          tx.respond(createResponse(req, 200));
        },
      },
    });
    const onReceive = (b: Uint8Array, c: ReceiveContext) => layer.receive(b, c);
    const plain = o.net ? o.net.bind({ address: LOOP, onReceive }) : await openUdpTransport({ address: LOOP, port: 0, onReceive });
    self = new ScriptedUe(o, backend, layer, plain);
    await self.endpoint(self.portUc);
    await self.endpoint(self.portUs);
    self.clientHeader = self.#client();
    return self;
  }

  get contact(): string {
    return `sip:${this.o.impu.replace(/^sip:/, '').split('@')[0]}@${LOOP}:${this.portUs}`;
  }

  #client(): string {
    return serializeMechanisms(
      buildSecurityClient(
        this.o.pairs ?? [{ alg: 'hmac-sha-1-96', ealg: 'null' }],
        { spiC: this.spis[0], spiS: this.spis[1], portC: this.portUc, portS: this.portUs },
        this.o.modes ?? ['UDP-enc-tun'],
      ),
    );
  }

  /** New client port and SPIs, port_us kept (spec digest §8 rule 5), fresh Call-ID. */
  async newRound(): Promise<void> {
    this.portUc = freshPort();
    this.spis = this.backend.allocateSpis(LOOP, 2) as [number, number];
    await this.endpoint(this.portUc);
    this.clientHeader = this.#client();
    this.callId = newCallId();
  }

  #register(via: string, auth: string, extra: [string, string][], expires?: number): SipRequest {
    const headers: [string, string][] = [
      ['Contact', `<${this.contact}>;expires=${expires ?? 600000}`],
      ['Authorization', auth],
      ['Require', 'sec-agree'],
      ['Proxy-Require', 'sec-agree'],
      ['Supported', 'path, sec-agree'],
      ...extra,
    ];
    return createRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      via,
      from: `<${this.o.impu}>;tag=u${this.cseq}`,
      to: `<${this.o.impu}>`,
      callId: this.callId,
      cseq: this.cseq++,
      headers,
    });
  }

  /** SM1: the unprotected REGISTER to port 5060 (client header overridable; null = none). */
  unprotectedRegister(o: { client?: string | null } = {}): Promise<Answer> {
    const via = this.o.via ?? { host: LOOP, port: this.plain.local.port };
    const client = o.client === undefined ? this.clientHeader : o.client;
    const req = this.#register(
      `SIP/2.0/UDP ${via.host}:${via.port};branch=${newBranch()};rport`,
      `Digest username="${this.o.impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`,
      client === null ? [] : [['Security-Client', client]],
    );
    return request(this.layer, req, { transport: this.plain, to: { address: this.o.pcscf.address, port: this.o.pcscf.port } });
  }

  /** SM6 at the UE: AUTN check, RES/CK/IK, the temporary set from the Security-Server (spi override for tests). */
  async acceptChallenge(res: SipResponse, o: { spiPs?: number } = {}): Promise<SaSet> {
    const www = parseDigestHeaderOrThrow(res.headers.get('WWW-Authenticate')!);
    this.nonce = getParam(www, 'nonce')!;
    const { rand, autn } = parseNonceOrThrow(this.nonce);
    const r = this.usim.respond(rand, autn);
    if (r.result !== 'ok') throw new Error(`USIM: ${r.result}`);
    this.res = r.res;
    this.serverHeader = res.headers.raw('Security-Server').join(', ');
    const c = chooseServerMechanism(parseSecurityHeaderOrThrow(this.serverHeader, 'Security-Server'), {
      pairs: this.o.pairs ?? [{ alg: 'hmac-sha-1-96', ealg: 'null' }],
    });
    if (!c.ok) throw c.error;
    const mode = modeFromMod(c.mod);
    const via = this.o.via;
    const set = createSaSet({
      role: 'ue',
      ue: {
        ip: LOOP,
        portC: this.portUc,
        portS: this.portUs,
        spiC: this.spis[0],
        spiS: this.spis[1],
        ...(via && via.host !== LOOP ? { innerIp: via.host } : {}),
      },
      pcscf: {
        ip: this.o.pcscf.address,
        portC: c.server.portC,
        portS: c.server.portS,
        spiC: c.server.spiC,
        spiS: o.spiPs ?? c.server.spiS,
      },
      alg: c.alg,
      ealg: c.ealg,
      keys: expandKeys(r.ik, r.ck, c.alg, c.ealg),
      mode,
      ...(mode === 'udp-enc-tunnel' ? { encap: { uePort: this.backend.encapPort, pcscfPort: this.o.pcEncapPort } } : {}),
    });
    await this.backend.install(set);
    this.temporary = set;
    return set;
  }

  /** SM7: the protected REGISTER over the temporary set (headers overridable for the bidding-down tests). */
  protectedRegister(o: { verify?: string | null; client?: string | null; expires?: number; over?: SaSet } = {}): Promise<Answer> {
    const set = o.over ?? this.temporary!;
    const response = digestResponse({
      username: this.o.impi,
      realm: DOMAIN,
      uri: `sip:${DOMAIN}`,
      nonce: this.nonce,
      method: 'REGISTER',
      algorithm: 'AKAv1-MD5',
      res: this.res!,
      qop: 'auth',
      nc: '00000001',
      cnonce: 'c0ffee',
    });
    const auth = `Digest username="${this.o.impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="${this.nonce}", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c0ffee", response="${response}"`;
    const verify = o.verify === undefined ? this.serverHeader : o.verify;
    const client = o.client === undefined ? this.clientHeader : o.client;
    const extra: [string, string][] = [
      ...(client === null ? [] : [['Security-Client', client] as [string, string]]),
      ...(verify == null ? [] : [['Security-Verify', verify] as [string, string]]),
    ];
    const req = this.#register(`SIP/2.0/UDP ${LOOP}:${this.portUs};branch=${newBranch()};rport`, auth, extra, o.expires);
    return this.sendOver(set, req);
  }

  /** Whole registration: SM1 → SM12. Promotes the temporary set to current on 200. */
  async register(): Promise<Answer> {
    const a = await this.unprotectedRegister();
    if (a.res.status !== 401) return a;
    await this.acceptChallenge(a.res);
    return this.finish();
  }

  /** SM7 → SM12 and the UE-side promotion. */
  async finish(o: Parameters<ScriptedUe['protectedRegister']>[0] = {}): Promise<Answer> {
    const b = await this.protectedRegister(o);
    if (b.res.status === 200 && this.temporary) {
      this.temporary.apply('authenticated');
      this.current?.apply('superseded');
      this.current = this.temporary;
      this.temporary = undefined;
    }
    return b;
  }

  /** A re-REGISTER over the current set with a new Security-Client (new round) and Security-Verify. */
  async reRegisterRequest(o: { expires?: number; client?: string | null } = {}): Promise<Answer> {
    const auth = `Digest username="${this.o.impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="${this.nonce}", response=""`;
    const client = o.client === undefined ? this.clientHeader : o.client;
    const extra: [string, string][] = [
      ...(client === null ? [] : [['Security-Client', client] as [string, string]]),
      ['Security-Verify', this.serverHeader!],
    ];
    const req = this.#register(`SIP/2.0/UDP ${LOOP}:${this.portUs};branch=${newBranch()};rport`, auth, extra, o.expires);
    return this.sendOver(this.current!, req);
  }

  /**
   * An attacker's REGISTER over one of our own sets (`over`, default current) carrying other
   * identities: Authorization username `impi`, To/From `impu` (issue 10 §1).
   */
  registerAs(o: { impi: string; impu: string; expires?: number; over?: SaSet; client?: string }): Promise<Answer> {
    const headers: [string, string][] = [
      ['Contact', `<${this.contact}>;expires=${o.expires ?? 600000}`],
      ['Authorization', `Digest username="${o.impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="${this.nonce}", response=""`],
      ['Require', 'sec-agree'],
      ['Proxy-Require', 'sec-agree'],
      ['Supported', 'path, sec-agree'],
      ['Security-Client', o.client ?? this.clientHeader],
      ...(this.serverHeader ? [['Security-Verify', this.serverHeader] as [string, string]] : []),
    ];
    const req = createRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      via: `SIP/2.0/UDP ${LOOP}:${this.portUs};branch=${newBranch()};rport`,
      from: `<${o.impu}>;tag=x${this.cseq}`,
      to: `<${o.impu}>`,
      callId: this.callId,
      cseq: this.cseq++,
      headers,
    });
    return this.sendOver(o.over ?? this.current!, req);
  }

  /** Any request from port_uc to port_ps over `set` (SA1). */
  send(method: string, o: { from?: string; ppi?: string; over?: SaSet } = {}): Promise<Answer> {
    return this.sendOver(o.over ?? this.current!, this.build(method, o));
  }

  /** A request as send() makes it (Via sent-by port_us, Route to port_ps). */
  build(method: string, o: { from?: string; ppi?: string } = {}): SipRequest {
    const from = o.from ?? this.o.impu;
    return createRequest({
      method,
      uri: `sip:someone@${DOMAIN}`,
      via: `SIP/2.0/UDP ${LOOP}:${this.portUs};branch=${newBranch()};rport`,
      from: `<${from}>;tag=m${this.cseq}`,
      to: `<sip:someone@${DOMAIN}>`,
      callId: newCallId(),
      cseq: this.cseq++,
      headers: [
        ['Route', `<sip:${this.o.pcscf.address}:${this.o.pcscf.portS};lr>`],
        ['Contact', `<${this.contact}>`],
        ...(o.ppi ? [['P-Preferred-Identity', `<${o.ppi}>`] as [string, string]] : []),
      ],
    });
  }

  /** The protected endpoint on a local port, opened (and joined to the layer) once. */
  async endpoint(port: number): Promise<ProtectedEndpoint> {
    let ep = this.#eps.get(port);
    if (!ep) {
      ep = await this.backend.openEndpoint({ address: LOOP, port });
      attachProtected(ep, this.layer.receive.bind(this.layer));
      this.#eps.set(port, ep);
    }
    return ep;
  }

  /** A request outside any SA, to the P-CSCF's plain port. */
  sendPlain(method: string): Promise<Answer> {
    const req = createRequest({
      method,
      uri: `sip:someone@${DOMAIN}`,
      via: `SIP/2.0/UDP ${LOOP}:${this.plain.local.port};branch=${newBranch()};rport`,
      from: `<${this.o.impu}>;tag=p${this.cseq}`,
      to: `<sip:someone@${DOMAIN}>`,
      callId: newCallId(),
      cseq: this.cseq++,
    });
    return request(this.layer, req, { transport: this.plain, to: { address: this.o.pcscf.address, port: this.o.pcscf.port } });
  }

  /** Sends from the set's port_uc (SA1), whatever round that port belongs to. */
  async sendOver(set: SaSet, req: SipRequest): Promise<Answer> {
    const ep = await this.endpoint(set.config.ue.portC);
    const route = { transport: protectedTransport(ep, { set }), to: { address: this.o.pcscf.address, port: this.o.pcscf.portS } };
    return request(this.layer, req, route);
  }

  async close(): Promise<void> {
    this.layer.close();
    await this.plain.close();
    await this.backend.close();
  }
}
