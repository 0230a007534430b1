// Test kit (not a test file): the fake S-CSCF of the P-CSCF tests — a 401 with ik/ck from
// generateVector, then 200 or 403 (nothing checked), MESSAGE/INVITE answered or held — and the
// loopback constants and request helper the scripted UE shares.
import { buildNonce, generateVector, getParam, parseDigestHeaderOrThrow } from '../aka/index.ts';
import { createRequest, createResponse, newBranch, newCallId } from '../sip/builders.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import { TransactionLayer, type ServerTransaction } from '../sip/transaction-manager.ts';
import type { ReceiveContext, SipTransport } from '../sip/transport.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import type { MemoryNetwork } from '../sip/memory-transport.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { isDeregistration } from './decisions.ts';

/** TS 35.208 test set 1. */
export const K = fromHex('465b5ce8b199b49faa5f0a2ee238a6bc');
export const OPC = fromHex('cd63cb71954a9f4e48a5994e37a02baf');
export const DOMAIN = 'ims.example.org';
export const LOOP = '127.0.0.1';

export interface Answer {
  readonly res: SipResponse;
  readonly ctx: ReceiveContext;
}

/** Sends through `layer` and resolves with the final response (rejects on timeout / transport error). */
export function request(
  layer: TransactionLayer,
  req: SipRequest,
  route: { transport: SipTransport; to: { address: string; port: number } },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    layer.sendRequest(req, route, {
      onResponse: (res, ctx) => res.status >= 200 && resolve({ res, ctx }),
      onTimeout: () => reject(new Error('timeout')),
      onTransportError: (_t, e) => reject(e),
    });
  });
}

/** The fake S-CSCF: challenges every REGISTER it has no pending challenge for (unless told not to). */
export class FakeScscf {
  readonly requests: SipRequest[] = [];
  /** Status for the REGISTER that answers a challenge. */
  answerProtected = 200;
  /** Answer a re-REGISTER over an SA with 200 at once (24.228 R2-1a) instead of challenging it. */
  challengeReRegister = true;
  expires = 600;
  /** Hold non-REGISTER requests (answered by release()). */
  hold = false;
  /** Record REGISTERs and never answer them (an S-CSCF that went away). */
  silent = false;
  readonly held: ServerTransaction[] = [];
  readonly #pending = new Set<string>();
  #sqn = 32;
  private constructor(
    readonly layer: TransactionLayer,
    readonly transport: SipTransport,
  ) {}

  /** `net`: plain SIP on this in-memory network instead of a loopback UDP socket. */
  static async start(o: { net?: MemoryNetwork } = {}): Promise<FakeScscf> {
    let self: FakeScscf | undefined;
    const layer = new TransactionLayer({
      user: {
        onRequest: (tx, req, ctx) => self!.#onRequest(tx, req, ctx),
        onAck: (ack) => self!.requests.push(ack),
      },
    });
    const onReceive = (b: Uint8Array, c: ReceiveContext) => layer.receive(b, c);
    const transport = o.net ? o.net.bind({ address: LOOP, onReceive }) : await openUdpTransport({ address: LOOP, port: 0, onReceive });
    self = new FakeScscf(layer, transport);
    return self;
  }

  get endpoint(): { address: string; port: number } {
    return this.transport.local;
  }

  registers(): SipRequest[] {
    return this.requests.filter((r) => r.method === 'REGISTER');
  }

  release(status = 200): void {
    for (const tx of this.held.splice(0)) tx.respond(createResponse(tx.request, status));
  }

  /** A network-initiated request to `contact` through the P-CSCF's Path. */
  sendToUe(pcscf: { address: string; port: number; pathUri: string }, contact: string, method = 'MESSAGE'): Promise<Answer> {
    const req = createRequest({
      method,
      uri: contact,
      via: `SIP/2.0/UDP ${LOOP}:${this.endpoint.port};branch=${newBranch()};rport`,
      from: `<sip:scscf@${DOMAIN}>;tag=s1`,
      to: `<${contact}>`,
      callId: newCallId(),
      cseq: 1,
      headers: [['Route', `<${pcscf.pathUri}>`]],
    });
    return request(this.layer, req, { transport: this.transport, to: { address: pcscf.address, port: pcscf.port } });
  }

  async close(): Promise<void> {
    this.layer.close();
    await this.transport.close();
  }

  #onRequest(tx: ServerTransaction, req: SipRequest, _ctx: ReceiveContext): void {
    this.requests.push(req);
    if (req.method !== 'REGISTER') {
      if (this.hold && req.method !== 'CANCEL') this.held.push(tx);
      else tx.respond(createResponse(req, 200));
      return;
    }
    if (this.silent) return;
    const callId = req.headers.get('Call-ID')!;
    const auth = parseDigestHeaderOrThrow(req.headers.get('Authorization')!);
    const integrity = getParam(auth, 'integrity-protected');
    const answered = (getParam(auth, 'response') ?? '') !== '';
    if (this.#pending.has(callId) && answered) {
      this.#pending.delete(callId);
      if (this.answerProtected !== 200) return void tx.respond(createResponse(req, this.answerProtected));
      return void tx.respond(this.#ok(req));
    }
    if (integrity === 'yes' && (isDeregistration(req) || !this.challengeReRegister)) return void tx.respond(this.#ok(req));
    const v = generateVector({ k: K, opc: OPC, sqn: this.#sqn++, amf: fromHex('8000') });
    this.#pending.add(callId);
    const www = `Digest realm="${DOMAIN}", nonce="${buildNonce(v.rand, v.autn)}", algorithm=AKAv1-MD5, qop="auth", ik="${toHex(v.ik)}", ck="${toHex(v.ck)}"`;
    tx.respond(createResponse(req, 401, undefined, [['WWW-Authenticate', www]]));
  }

  #ok(req: SipRequest): SipResponse {
    const dereg = isDeregistration(req);
    const contact = req.headers.get('Contact')!.replace(/;expires=\d+/, '');
    const to = req.headers.get('To')!;
    return createResponse(req, 200, undefined, [
      ['Contact', `${contact};expires=${dereg ? 0 : this.expires}`],
      ...req.headers.raw('Path').map((p) => ['Path', p] as const),
      ['Service-Route', `<sip:orig@${LOOP}:${this.endpoint.port};lr>`],
      ['P-Associated-URI', to.replace(/;tag=.*$/, '')],
    ]);
  }
}
