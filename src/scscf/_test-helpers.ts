// Test helpers (not a test file): an S-CSCF on a MemoryNetwork in virtual time, an in-memory HSS with
// two subscribers, a fake P-CSCF that forwards hand-built requests per the message contract
// (ARCHITECTURE.md), and the UE side of Digest AKA computed with the aka layer's Usim.
import {
  buildDigestHeader,
  digestResponse,
  getParam,
  parseDigestHeaderOrThrow,
  parseNonceOrThrow,
  serializeDigestHeader,
  Usim,
  type UsimOptions,
} from '../aka/index.ts';
import {
  createRequest,
  createResponse,
  ManualClock,
  MemoryNetwork,
  newBranch,
  newCallId,
  newTag,
  TransactionLayer,
  type Clock,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  type SipTransport,
} from '../sip/index.ts';
import { fromHex, toBase64 } from '../util/bytes.ts';
import { HssStore } from './hss-store.ts';
import { Hss } from './hss.ts';
import { Scscf, type ScscfOptions } from './scscf.ts';
import type { ScscfEvent } from './events.ts';

export const DOMAIN = 'ims.example';
export const SCSCF = { address: '10.0.0.5', port: 6060 };
export const PCSCF = { address: '10.0.0.4', port: 5060 };
export const PATH = `<sip:term@${PCSCF.address}:${PCSCF.port};lr>`;

// TS 35.208 Test Sets 1 and 2 keys.
export const ALICE = {
  impi: 'alice@ims.example',
  impus: ['sip:alice@ims.example', 'tel:+15550100'],
  k: '465b5ce8b199b49faa5f0a2ee238a6bc',
  op: 'cdc202d5123e20f62b6d676ac72cb318',
  ue: { address: '10.0.0.2', port: 5062 },
};
export const BOB = {
  impi: 'bob@ims.example',
  impus: ['sip:bob@ims.example'],
  k: '0396eb317b6d1c36f19c1c84cd6ffd16',
  op: 'ff9bb4d0b607ac3f1d54e37a1a1e8aa9',
  ue: { address: '10.0.0.3', port: 5072 },
};
export type User = typeof ALICE;

export function usimOf(u: User, opts: Partial<UsimOptions> = {}): Usim {
  return new Usim({ k: fromHex(u.k), op: fromHex(u.op), ...opts });
}

/** The fake P-CSCF: sends requests to the S-CSCF and records the requests it receives. */
export class FakePcscf {
  readonly received: { tx: ServerTransaction; req: SipRequest }[] = [];
  /** Status the P-CSCF answers received requests with (undefined: no answer). */
  answerWith: number | undefined = 200;
  readonly layer: TransactionLayer;
  transport!: SipTransport;
  /** Where send() goes by default. */
  scscf: { readonly address: string; readonly port: number } = SCSCF;

  constructor(
    clock: Clock,
    readonly self: { readonly address: string; readonly port: number } = PCSCF,
  ) {
    this.layer = new TransactionLayer({
      clock,
      // T1 = 1 s: its Timer F (64 s) outlasts the S-CSCF's (32 s), so a 408 from the S-CSCF arrives first.
      timers: { t1: 1000 },
      user: {
        onRequest: (tx, req) => {
          this.received.push({ tx, req });
          if (this.answerWith !== undefined) tx.respond(createResponse(req, this.answerWith));
        },
      },
    });
  }

  /** Its Path entry (24.229 §5.2.2: the P-CSCF adds itself on the REGISTER). */
  get path(): string {
    return `<sip:term@${this.self.address}:${this.self.port};lr>`;
  }

  /** Adds the P-CSCF's own Via on top and sends; resolves with the final response. */
  send(req: SipRequest, to: { readonly address: string; readonly port: number } = this.scscf): Promise<SipResponse> {
    req.headers.prepend('Via', `SIP/2.0/UDP ${this.self.address}:${this.self.port};branch=${newBranch()}`);
    return new Promise((resolve, reject) => {
      this.layer.sendRequest(
        req,
        { transport: this.transport, to },
        {
          onResponse: (res) => res.status >= 200 && resolve(res),
          onTimeout: () => reject(new Error('timeout')),
        },
      );
    });
  }
}

export async function setup(opts: Partial<ScscfOptions> = {}) {
  const clock = new ManualClock(1_000_000);
  const net = new MemoryNetwork();
  const store = new HssStore(':memory:');
  for (const u of [ALICE, BOB]) store.add({ impi: u.impi, impus: u.impus, k: fromHex(u.k), op: fromHex(u.op), amf: fromHex('8000') });
  const hss = new Hss(store);
  const events: ScscfEvent[] = [];
  const scscf = await Scscf.start({
    ...SCSCF,
    domain: DOMAIN,
    hss,
    clock,
    onEvent: (e) => events.push(e),
    transport: (onReceive) => net.bind({ ...SCSCF, onReceive }),
    ...opts,
  });
  const pcscf = new FakePcscf(clock);
  pcscf.transport = net.bind({ ...PCSCF, onReceive: (b, c) => pcscf.layer.receive(b, c) });
  return { clock, net, store, hss, scscf, pcscf, events, ue: new UeSide(pcscf) };
}

export interface RegisterParams {
  readonly user?: User;
  readonly callId?: string;
  readonly cseq?: number;
  readonly expires?: number | undefined;
  /** Authorization params; undefined: no Authorization header at all. */
  readonly auth?: Record<string, string | undefined> | undefined;
  readonly integrityProtected?: 'yes' | 'no';
  readonly impu?: string;
}

/** The UE's side: REGISTERs as the P-CSCF forwards them, and Digest AKA answers from a Usim. */
export class UeSide {
  constructor(readonly pcscf: FakePcscf) {}

  /** A REGISTER as forwarded by the P-CSCF (UE Via below, Path, integrity-protected, no sec-agree). */
  register(p: RegisterParams = {}): SipRequest {
    const u = p.user ?? ALICE;
    const impu = p.impu ?? u.impus[0]!;
    const headers: [string, string][] = [
      [
        'Contact',
        `<sip:${impu.replace(/^sip:|@.*$/g, '')}@${u.ue.address}:${u.ue.port}>${p.expires === undefined ? '' : `;expires=${p.expires}`}`,
      ],
      ['Path', this.pcscf.path],
      ['Supported', 'path'],
    ];
    const auth = 'auth' in p ? p.auth : { username: u.impi, realm: DOMAIN, uri: `sip:${DOMAIN}`, nonce: '', response: '' };
    if (auth)
      headers.push([
        'Authorization',
        serializeDigestHeader(buildDigestHeader({ ...auth, 'integrity-protected': p.integrityProtected ?? 'no' })),
      ]);
    return createRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      via: `SIP/2.0/UDP ${u.ue.address}:${u.ue.port};received=${u.ue.address};rport=${u.ue.port};branch=${newBranch()}`,
      from: `<${impu}>;tag=${newTag()}`,
      to: `<${impu}>`,
      callId: p.callId ?? newCallId(u.ue.address),
      cseq: p.cseq ?? 1,
      maxForwards: 69,
      headers,
    });
  }

  /** Authorization params answering `challenge` (a 401) with the Usim's RES (qop=auth, nc 1). */
  answer(challenge: SipResponse, usim: Usim, u: User = ALICE, over: Record<string, string> = {}): Record<string, string> {
    const www = parseDigestHeaderOrThrow(challenge.headers.get('WWW-Authenticate')!);
    const nonce = getParam(www, 'nonce')!;
    const { rand, autn } = parseNonceOrThrow(nonce);
    const r = usim.respond(rand, autn);
    const base = {
      username: u.impi,
      realm: DOMAIN,
      uri: `sip:${DOMAIN}`,
      nonce,
      algorithm: 'AKAv1-MD5',
      qop: 'auth',
      nc: '00000001',
      cnonce: 'c0ffee',
    };
    if (r.result === 'sync_failure') {
      const response = digestResponse({ ...base, method: 'REGISTER', algorithm: 'AKAv1-MD5', qop: 'auth', res: new Uint8Array(0) });
      return { ...base, response, auts: toBase64(r.auts), ...over };
    }
    if (r.result !== 'ok') return { ...base, response: '', ...over };
    const response = digestResponse({ ...base, method: 'REGISTER', algorithm: 'AKAv1-MD5', qop: 'auth', res: r.res });
    return { ...base, response, ...over };
  }

  /** Initial REGISTER → 401 → answer → final response. */
  async registerFully(usim: Usim, p: RegisterParams = {}): Promise<{ challenge: SipResponse; final: SipResponse }> {
    const callId = p.callId ?? newCallId();
    const challenge = await this.pcscf.send(this.register({ ...p, callId }));
    const final = await this.pcscf.send(
      this.register({ ...p, callId, cseq: 2, auth: this.answer(challenge, usim, p.user), integrityProtected: 'yes' }),
    );
    return { challenge, final };
  }
}
