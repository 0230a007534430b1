// The IMS UE (24.229 §5.1.1, 33.203 §7): USIM, registration state, SA table, protected requests
// both ways, refresh timers. Procedures run one at a time; MESSAGEs may go while a refresh runs.
import { EventEmitter } from 'node:events';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { SqnArray, Usim, usimRespond, type SqnFreshness, type UsimResult } from '../aka/index.ts';
import type { ProtectedContext } from '../ipsec/backends/backend.ts';
import type { SaSet, SaSetEvent } from '../ipsec/index.ts';
import { buildSecurityClient, serializeMechanisms, type SpiPortSet, type UeSupport, type UsableMod } from '../secagree/index.ts';
import {
  createResponse,
  newCallId,
  newTag,
  systemClock,
  type Clock,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
} from '../sip/index.ts';
import { UeError } from './errors.ts';
import { buildProtectedRequest, type RegDialog, type UeIdentity } from './register-request.ts';
import {
  runRegistration,
  viaReceived,
  type RegistrationHost,
  type UeTestHooks,
  type RegistrationKind,
  type RegistrationResult,
} from './registration.ts';
import { isRegistered, transition, type RegEvent, type RegState, type RegTransition } from './registration-state.ts';
import { choosePort, REG_AWAIT_AUTH_MS, UeSaTable, type ClientOffer, type SaTableDeps } from './sa-table.ts';
import { UeSipIo, type SendOutcome, type SipIoOptions } from './sip-io.ts';
import { UeNat } from './nat.ts';
import { ownString } from '../util/own-string.ts';
import {
  DEFAULT_OFFERS,
  type IncomingAnswer,
  type IncomingRequest,
  type RequestHandler,
  type UeEventMap,
  type UeExchangePhase,
  type UeObserver,
  type UeOptions,
  type UeStatus,
} from './ue-types.ts';

const DEFAULT_ANSWERED = new Set(['MESSAGE', 'NOTIFY', 'OPTIONS']);
const ignore = (): void => {};
const DEFAULT_MODES: readonly UsableMod[] = ['trans'];

// Entry points of the Ue for UeLink only (module-private keys: not part of the Ue's API).
const onProtectedRequest = Symbol('onProtectedRequest');
const releaseUnusedEndpoints = Symbol('releaseUnusedEndpoints');

/**
 * What the SA table and the SIP plumbing call back into (their SaTableDeps and SipIoOptions): one
 * object per UE whose hooks are prototype methods and whose settings are read from the options.
 * A load run holds 100k UEs; a closure per hook per UE (and their options objects) was ~1 KB of
 * each (issue 9 §2).
 */
class UeLink implements SaTableDeps, SipIoOptions {
  ue: Ue | undefined;
  constructor(
    readonly o: UeOptions,
    readonly pcscfIp: string,
    readonly clock: Clock,
  ) {}
  get backend(): UeOptions['backend'] {
    return this.o.backend;
  }
  get localIp(): string {
    return this.o.localIp;
  }
  get localPort(): number {
    return this.o.localPort ?? 0;
  }
  get timers(): UeOptions['timers'] {
    return this.o.timers;
  }
  get trace(): UeOptions['trace'] {
    return this.o.trace;
  }
  get transport(): UeOptions['transport'] {
    return this.o.transport;
  }
  get plainSocket(): UeOptions['plainSocket'] {
    return this.o.plainSocket;
  }
  get guardProtectedPorts(): UeOptions['guardProtectedPorts'] {
    return this.o.guardProtectedPorts;
  }
  get openPlain(): UeOptions['openPlain'] {
    return this.o.openPlain;
  }
  get transactions(): UeOptions['transactions'] {
    return this.o.transactions;
  }
  get pcscfEncapPort(): number {
    return this.o.pcscfEncapPort ?? 4500;
  }
  get regAwaitAuthMs(): number {
    return this.o.regAwaitAuthMs ?? REG_AWAIT_AUTH_MS;
  }
  get label(): string {
    const impi = this.o.impi;
    const at = impi.indexOf('@');
    return `ue:${at < 0 ? impi : impi.slice(0, at)}`;
  }
  onRequest(tx: ServerTransaction, req: SipRequest, pctx: ProtectedContext): void {
    this.ue?.[onProtectedRequest](tx, req, pctx);
  }
  note(text: string): void {
    this.ue?.step(text);
  }
  onCreated(set: SaSet): void {
    this.ue?.emit('sa-created', set);
  }
  onSyncFailed(set: SaSet, e: Error): void {
    this.ue?.step(`SA set ${set.id}: the backend could not update its lifetime: ${e.message}`);
  }
  onDeleted(set: SaSet, why: SaSetEvent, error?: Error): void {
    const ue = this.ue;
    if (!ue) return;
    if (ue.tracing) ue.step(`SA set ${set.id} deleted (${why})${error ? `; the backend could not remove it: ${error.message}` : ''}`);
    ue.emit('sa-deleted', set, why);
    ue[releaseUnusedEndpoints]();
  }
}

/** The last UeSupport made: UEs built from the same offers and modes (a load run's) share it. */
let lastSupport: { readonly offers: UeOptions['offers']; readonly modes: UeOptions['modes']; readonly support: UeSupport } | undefined;

function supportOf(o: UeOptions): UeSupport {
  if (lastSupport && lastSupport.offers === o.offers && lastSupport.modes === o.modes) return lastSupport.support;
  const support = { pairs: o.offers ?? DEFAULT_OFFERS, modes: o.modes ?? DEFAULT_MODES };
  lastSupport = { offers: o.offers, modes: o.modes, support };
  return support;
}

/** The Security-Client value offering `support` with `ue`'s SPIs and ports (see newOffer for its form). */
function buildSecurityClientValue(support: UeSupport, ue: SpiPortSet): string {
  const onlyTrans = (support.modes ?? DEFAULT_MODES).every((m) => m === 'trans');
  const entries = buildSecurityClient(support.pairs, ue, support.modes)
    .reverse()
    .map(({ prot: _p, mod, ...e }) => (onlyTrans || !mod ? e : { ...e, mod }));
  return serializeMechanisms(entries);
}

/** Numbers no real offer is built with here, to find where the SPIs and ports go in the value. */
const PROBE: SpiPortSet = { spiC: 4111111111, spiS: 4122222222, portC: 61111, portS: 62222 };
const PROBE_FIELD: Record<string, number> = { 4111111111: 0, 4122222222: 1, 61111: 2, 62222: 3 };

/** A Security-Client value as its fixed texts and, between them, which number goes there (0 spiC, 1 spiS, 2 portC, 3 portS). */
interface ClientTemplate {
  readonly texts: readonly string[];
  readonly fields: readonly number[];
}

/**
 * Per way of offering (a UeSupport: every UE of a load run shares one), the Security-Client value
 * as a template; null when the probe did not match a real build. Only the numbers change between
 * offers: building the entries and serialising them each time was ~1 % of the load process's CPU
 * (issue 9). Filled by one join: one flat string, not a tree of pieces flattened again when sent.
 */
const clientTemplates = new WeakMap<UeSupport, ClientTemplate | null>();

function fillTemplate(t: ClientTemplate, ue: SpiPortSet): string {
  const values = [String(ue.spiC), String(ue.spiS), String(ue.portC), String(ue.portS)];
  const { texts, fields } = t;
  const parts = new Array<string>(texts.length + fields.length);
  parts[0] = texts[0]!;
  for (let i = 0; i < fields.length; i++) {
    parts[2 * i + 1] = values[fields[i]!]!;
    parts[2 * i + 2] = texts[i + 1]!;
  }
  return parts.join('');
}

function securityClientOf(support: UeSupport, ue: SpiPortSet): string {
  const t = clientTemplates.get(support);
  if (t) return fillTemplate(t, ue);
  const built = buildSecurityClientValue(support, ue);
  if (t === undefined) {
    // Split at "=<probe number>" followed by a parameter or entry end; kept only if it rebuilds this offer exactly.
    const pieces = buildSecurityClientValue(support, PROBE).split(/=(4111111111|4122222222|61111|62222)(?=[;,\s]|$)/);
    const template: ClientTemplate = {
      texts: pieces.filter((_, i) => i % 2 === 0).map((text, i, all) => (i < all.length - 1 ? `${text}=` : text)),
      fields: pieces.filter((_, i) => i % 2 === 1).map((probe) => PROBE_FIELD[probe]!),
    };
    clientTemplates.set(support, fillTemplate(template, ue) === built ? template : null);
  }
  return built;
}

/** Public addresses as many UEs of a load run see them (a few addresses and pooled ports): one object each; bounded. */
const publicAddresses = new Map<string, { readonly address: string; readonly port?: number }>();
function sharedPublicAddress(a: { address: string; port?: number }): { readonly address: string; readonly port?: number } {
  const key = `${a.address}|${a.port ?? ''}`;
  const have = publicAddresses.get(key);
  if (have) return have;
  const own = { address: sharedString(a.address), ...(a.port !== undefined && { port: a.port }) };
  if (publicAddresses.size < 1024) publicAddresses.set(key, own);
  return own;
}

const IDLE: Promise<unknown> = Promise.resolve();
const IDLE_VOID: Promise<void> = Promise.resolve();
/** A rule for the key check of the constructor only (its Usim is dropped at once). */
const KEY_CHECK_ONLY: SqnFreshness = Object.freeze({ check: () => ({ ok: true as const }), accept: () => {}, highest: () => 0 });
const NONE: readonly string[] = Object.freeze([]);
/** #impus when the 200 OK listed exactly our own IMPU (P-Associated-URI, the rule): no array and string per UE. */
const SAME_IMPU: readonly string[] = Object.freeze([]);

/** Equal lists many UEs keep (a load run's Service-Route) as one frozen array of shared strings; bounded. */
const sharedLists = new Map<string, readonly string[]>();
function sharedList(l: readonly string[]): readonly string[] {
  if (l.length === 0) return NONE;
  const key = l.join('\n');
  const have = sharedLists.get(key);
  if (have) return have;
  const own = Object.freeze(l.map(sharedString));
  if (sharedLists.size < 256) sharedLists.set(key, own);
  return own;
}

/** Equal strings many UEs keep (home domain, Service-Route) as one copy; bounded, so it never grows with the UEs. */
const shared = new Map<string, string>();
function sharedString(s: string): string {
  const have = shared.get(s);
  if (have !== undefined) return have;
  const own = ownString(s);
  if (shared.size < 256) shared.set(own, own);
  return own;
}

/** An IMS UE (24.229 §5.1.1, 33.203 §7): `Ue.create(options)`, then `register()` (IMS AKA, sec-agree and the four SAs), `sendMessage()`, `onRequest()` for requests from the network, `reRegister()`, `deregister()`, `close()`. Events (`step`, `state`, `registered`, `failed`, `sa-created`, …) never carry keys. */
export class Ue extends EventEmitter<UeEventMap> implements RegistrationHost {
  readonly id: UeIdentity;
  readonly pcscf: { readonly address: string; readonly port: number };
  readonly support: UeSupport;
  readonly sas: UeSaTable;
  readonly dialog: RegDialog = { callId: '', fromTag: '', cseq: 0 };
  cachedAuthorization: string | undefined;
  // Settings are read from the options (getters below), not copied into fields of each of a load
  // run's 100k UEs (issue 9 §2).
  readonly #o: UeOptions;
  readonly #link: UeLink;
  readonly #io: UeSipIo;
  #state: RegState = 'idle';
  /** The procedure running (for the observer's phase names). */
  #proc: RegistrationKind | undefined;
  #closed = false;
  /** The procedures' chain; back to the shared IDLE once the last one settled (no settled promise kept per UE). */
  #queue: Promise<unknown> = IDLE;
  #handler: RequestHandler | undefined;
  #refreshTimer: (() => void) | undefined;
  #expiryTimer: (() => void) | undefined;
  /** The USIM's SQN state (33.102 Annex C) while a procedure may use it; K and OPc stay the caller's (one pair for a whole load run). */
  #freshness: SqnFreshness | undefined;
  /**
   * The same state while idle, when it is the Annex C array: [IND, SEQ_MS] of its non-zero slots
   * (one or two after a few registrations) instead of 2^IND numbers and their array (issue 9 §2).
   */
  #sqnIdle: readonly number[] | number | undefined;
  #expiresAt: number | undefined;
  /** What the last 200 OK granted (undefined: nothing); impus SAME_IMPU when they are just our IMPU (the rule). */
  #grantedExpires: number | undefined;
  #impus: readonly string[] = NONE;
  #serviceRoute: readonly string[] = NONE;
  readonly #nat: UeNat;

  private constructor(link: UeLink, io: UeSipIo) {
    super();
    const o = link.o;
    const pcscfIp = link.pcscfIp;
    this.#o = o;
    this.#link = link;
    const domain = o.domain ?? o.impi.split('@')[1];
    if (!domain)
      throw new UeError('UE_BAD_OPTIONS', `domain: give --domain or an IMPI with a realm (user@realm), got ${JSON.stringify(o.impi)}`);
    this.id = { impi: o.impi, impu: o.impu, domain: sharedString(domain) };
    this.pcscf =
      o.pcscf.address === pcscfIp && o.pcscf.port !== undefined
        ? (o.pcscf as { readonly address: string; readonly port: number })
        : { address: pcscfIp, port: o.pcscf.port ?? 5060 };
    // Checks the keys now; only its SQN state is kept (a USIM is made per challenge, see usim). The
    // default rule starts as an all-zero Annex C array: kept as its idle form (#sqnIdle 0), not built.
    const keys = { k: o.k, ...(o.opc && { opc: o.opc }), ...(o.op && { op: o.op }) };
    if (o.usim === undefined) {
      new Usim({ ...keys, freshness: KEY_CHECK_ONLY });
      this.#sqnIdle = 0;
    } else this.#freshness = new Usim({ ...keys, ...o.usim }).freshness;
    this.support = supportOf(o);
    this.#nat = new UeNat(o.localIp, o.natInnerAddress ?? 'private');
    this.sas = new UeSaTable(link);
    this.#io = io;
  }

  get localIp(): string {
    return this.#o.localIp;
  }
  get expires(): number {
    return this.#o.expires ?? 600000;
  }
  get maxAttempts(): number {
    return this.#o.maxAttempts ?? 3;
  }
  get maxInvalidChallenges(): number {
    return this.#o.maxInvalidChallenges ?? 2;
  }
  get testHooks(): UeTestHooks | undefined {
    return this.#o.__testHooks;
  }
  get observer(): UeObserver | undefined {
    return this.#o.observer;
  }
  get #clock(): Clock {
    return this.#link.clock;
  }

  /**
   * The USIM (33.102 §6.3.3) over this UE's K/OPc and SQN state, made when asked: an idle UE holds
   * no copy of the keys (a load run's UEs share one K/OPc).
   */
  akaRespond(rand: Uint8Array, autn: Uint8Array): UsimResult {
    const o = this.#o;
    // With OPc (a load run's UEs) no Usim is built: it would copy K and OPc per challenge (keys checked at construction).
    if (o.opc) return usimRespond(o.k, o.opc, this.#sqnState(), rand, autn);
    return new Usim({ k: o.k, ...(o.op && { op: o.op }), freshness: this.#sqnState() }).respond(rand, autn);
  }

  #sqnState(): SqnFreshness {
    if (this.#freshness) return this.#freshness;
    const idle = this.#sqnIdle!;
    const indLen = this.#o.usim?.indLen;
    const slots = 2 ** (indLen ?? 5);
    const seqMs = new Array<number>(slots).fill(0);
    if (typeof idle === 'number') seqMs[idle % slots] = Math.floor(idle / slots);
    else for (let i = 0; i < idle.length; i += 2) seqMs[idle[i]!] = idle[i + 1]!;
    this.#sqnIdle = undefined;
    return (this.#freshness = new SqnArray({ indLen, seqMs, acceptAny: this.#o.usim?.acceptAnySqn === true }));
  }

  /** Idle: the Annex C array as its non-zero slots (#sqnIdle). Any other rule is kept as it is. */
  #compactSqnState(): void {
    const f = this.#freshness;
    const u = this.#o.usim;
    if (!(f instanceof SqnArray) || (u && Object.keys(u).some((k) => k !== 'indLen' && k !== 'acceptAnySqn'))) return;
    const seqMs = f.snapshot();
    let used = 0;
    let ind = -1;
    for (let i = 0; i < seqMs.length; i++) {
      if (seqMs[i]! > 0) {
        used++;
        if (ind < 0) ind = i;
      }
    }
    if (used === 0) {
      // Never a challenge accepted: the all-zero array, as the constructor keeps it.
      this.#sqnIdle = 0;
      this.#freshness = undefined;
      return;
    }
    if (used === 1) {
      // The rule after a few registrations: one slot, kept as one number (SEQ · 2^IND-length + IND, < 2^53).
      const packed = seqMs[ind]! * seqMs.length + ind;
      if (Number.isSafeInteger(packed)) {
        this.#sqnIdle = packed;
        this.#freshness = undefined;
        return;
      }
    }
    const idle = new Array<number>(2 * used); // exact size
    let j = 0;
    seqMs.forEach((seq, ind) => {
      if (seq > 0) {
        idle[j++] = ind;
        idle[j++] = seq;
      }
    });
    this.#sqnIdle = idle;
    this.#freshness = undefined;
  }

  static async create(o: UeOptions): Promise<Ue> {
    if (isIP(o.localIp) === 0) throw new UeError('UE_BAD_OPTIONS', `localIp must be an IP address, got ${JSON.stringify(o.localIp)}`);
    const pcscfIp = isIP(o.pcscf.address) ? o.pcscf.address : (await lookup(o.pcscf.address, { family: isIP(o.localIp) })).address;
    const link = new UeLink(o, pcscfIp, o.clock ?? systemClock);
    const io = await UeSipIo.open(link);
    try {
      link.ue = new Ue(link, io);
    } catch (e) {
      await io.close();
      throw e;
    }
    return link.ue;
  }

  /** UeOptions.tag. */
  get tag(): unknown {
    return this.#o.tag;
  }

  get state(): RegState {
    return this.#state;
  }
  /** When the current registration runs out (ms on this UE's clock); undefined when not registered. */
  get expiresAt(): number | undefined {
    return isRegistered(this.#state) ? this.#expiresAt : undefined;
  }
  get closed(): boolean {
    return this.#closed;
  }
  get plainPort(): number {
    return this.#io.plainPort;
  }

  /** Initial registration, unprotected first REGISTER (24.229 §5.1.1.2). */
  register(): Promise<RegistrationResult> {
    return this.#procedure('initial');
  }

  /** Re-registration over the current set (24.229 §5.1.1.4.1). */
  reRegister(): Promise<RegistrationResult> {
    return this.#procedure('refresh');
  }

  /** De-registration over the current set; every SA set goes on the 200 OK (24.229 §5.1.1.6). */
  deregister(): Promise<RegistrationResult> {
    return this.#procedure('deregister');
  }

  /** A MESSAGE over the current set (RFC 3428); Timer F gives a 408, a send failure a 503 (RFC 3261 §8.1.3.1). */
  sendMessage(toUri: string, text: string, opts: { contentType?: string } = {}): Promise<SipResponse> {
    return this.sendRequest('MESSAGE', toUri, { body: new TextEncoder().encode(text), contentType: opts.contentType ?? 'text/plain' });
  }

  /**
   * Sends a request over SA1 of the current set. `headers` replace or add headers after the
   * request is built (e.g. another P-Preferred-Identity, for tests of the P-CSCF's identity check).
   */
  async sendRequest(
    method: string,
    toUri: string,
    opts: { body?: Uint8Array; contentType?: string; headers?: readonly (readonly [string, string])[] } = {},
  ): Promise<SipResponse> {
    const set = this.sas.current;
    if (this.#closed) throw new UeError('UE_CLOSED', 'the UE is closed');
    if (!isRegistered(this.#state) || !set) throw new UeError('UE_NOT_REGISTERED', `${method}: not registered (state ${this.#state})`);
    const a = this.addressing(set);
    const req = buildProtectedRequest({
      method,
      target: toUri,
      id: this.id,
      localIp: a.via,
      contactIp: a.contact,
      portUs: set.config.ue.portS,
      pcscfIp: this.pcscf.address,
      portPs: set.config.pcscf.portS,
      serviceRoute: this.#serviceRoute,
      callId: newCallId(),
      fromTag: newTag(),
      ...(opts.body && { body: opts.body }),
      ...(opts.contentType && { contentType: opts.contentType }),
    });
    for (const [name, value] of opts.headers ?? []) req.headers.set(name, value);
    if (this.tracing) this.step(`${method} to ${toUri} over SA1 of ${set.id}`);
    const out = await this.send(req, set);
    if (out.kind === 'response') {
      if (this.tracing) this.step(`${method}: ${out.response.status} ${out.response.reason}`);
      return out.response;
    }
    const status = out.kind === 'timeout' ? 408 : 503;
    const why =
      out.kind === 'timeout'
        ? 'no answer (Timer F)'
        : out.kind === 'clear-response'
          ? `answered in clear (${out.response.status}), not accepted`
          : out.error.message;
    this.step(`${method}: ${why}: ${status}`);
    return createResponse(req, status);
  }

  /** Answers requests arriving over the SAs; without one (or when it returns nothing) MESSAGE/NOTIFY/OPTIONS get 200. */
  onRequest(handler: RequestHandler): void {
    this.#handler = handler;
  }

  status(): UeStatus {
    const now = this.#clock.now();
    const inS = (at: number | undefined) => (at === undefined ? undefined : Math.max(0, Math.round((at - now) / 1000)));
    const live = isRegistered(this.#state);
    return {
      state: this.#state,
      impi: this.id.impi,
      impu: this.id.impu,
      pcscf: `${this.pcscf.address}:${this.pcscf.port}`,
      local: `${this.localIp}:${this.plainPort}`,
      impus: live ? (this.#impus === SAME_IMPU ? [this.id.impu] : [...this.#impus]) : [],
      serviceRoute: live ? [...this.#serviceRoute] : [],
      ...(live && this.#grantedExpires !== undefined && { expires: this.#grantedExpires, expiresInS: inS(this.#expiresAt) }),
      ...(this.#nat.publicAddress && { publicAddress: this.#nat.publicAddress }),
      nat: {
        behindNat: this.#nat.behindNat,
        // RFC 3948 §4 keepalives come from the backend's encapsulation socket (spec digest §15A point 3).
        keepalivesSent: this.#o.backend.counters.keepalivesSent ?? 0,
      },
      sets: this.sas.all().map((s) => ({
        id: s.id,
        state: s.state,
        alg: s.config.alg,
        ealg: s.config.ealg,
        mode: s.config.mode,
        ...(s.expiresAt !== undefined && { expiresInS: inS(s.expiresAt) }),
        inflight: this.sas.inflight(s),
        sas: s.summary(),
      })),
    };
  }

  /** Removes every SA set and closes the sockets (no de-registration: call deregister() first). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.fire('close');
    await this.#io.close();
  }

  // ---- RegistrationHost -------------------------------------------------------------------

  step(text: string): void {
    this.emit('step', text);
  }

  get tracing(): boolean {
    return this.listenerCount('step') > 0;
  }

  openPlain(): Promise<void> {
    return this.#io.openPlain();
  }

  newDialog(): void {
    // RFC 3261 §10.2: one Call-ID for a registration's REGISTERs, CSeq counting up.
    this.dialog.callId = newCallId();
    this.dialog.fromTag = newTag();
    this.dialog.cseq = 0;
    this.cachedAuthorization = undefined;
  }

  async newOffer(keepPortS?: number): Promise<ClientOffer> {
    const [spiC, spiS] = this.#o.backend.allocateSpis(this.localIp, 2) as [number, number];
    this.sas.pending = undefined;
    const used = this.sas.usedPorts().add(this.plainPort);
    if (keepPortS !== undefined) used.add(keepPortS);
    const portC = await this.#openFreePort(used);
    used.add(portC);
    const portS = keepPortS ?? (await this.#openFreePort(used));
    await this.#io.ensureEndpoint(portS);
    const ue: SpiPortSet = { spiC, spiS, portC, portS };
    // Interop (digest §17.1): Kamailio 5.6 merges the entries and takes the *last* one, so the most
    // preferred pair (and mode) goes last. Without q, RFC 3329 gives the order no meaning to others.
    // prot=esp and (with only trans offered) mod=trans are Annex H's defaults: left out, they save
    // ~20 octets per entry of a REGISTER that is too large for UDP already (RFC 3261 §18.1.1).
    // With both modes mod stays on every entry: Kamailio 5.6 merges all entries' parameters.
    const offer: ClientOffer = { spiC, spiS, portC, portS, header: securityClientOf(this.support, ue) };
    this.sas.pending = offer;
    this[releaseUnusedEndpoints]();
    return offer;
  }

  send(req: SipRequest, over: SaSet | undefined, opts?: { readonly clearAnswerEnds?: boolean }): Promise<SendOutcome> {
    const to = over ? { address: this.pcscf.address, port: over.config.pcscf.portS } : this.pcscf;
    if (over) this.sas.begin(over);
    const sent = this.#io.send(req, to, over, this.sas, opts);
    const ex = this.observer?.exchange;
    if (!ex) return sent;
    const phase: UeExchangePhase =
      req.method !== 'REGISTER'
        ? 'request'
        : this.#proc === 'deregister'
          ? 'deregister'
          : over?.state === 'temporary'
            ? 'protected-register'
            : 'register';
    const t0 = performance.now();
    return sent.then((o) => {
      ex.call(
        this.observer,
        phase,
        performance.now() - t0,
        o.kind === 'response' || o.kind === 'clear-response' ? o.response.status : o.kind,
      );
      return o;
    });
  }

  fire(event: RegEvent, data?: { expires?: number }): Promise<void> {
    if (this.#closed && event !== 'close') return IDLE_VOID; // a procedure finishing after close() changes nothing
    const from = this.#state;
    const t = transition(from, event);
    this.#state = t.state;
    // Most transitions have nothing to do: no async frame for them (several per registration).
    if (t.actions.length > 0) return this.#act(t, data?.expires ?? this.expires, from, event);
    if (t.state !== from) this.emit('state', t.state, from, event);
    return IDLE_VOID;
  }

  async #act(t: RegTransition, expires: number, from: RegState, event: RegEvent): Promise<void> {
    for (const a of t.actions) {
      if (a === 'discard-temporary') await this.sas.discardTemporary();
      else if (a === 'promote-temporary') await this.sas.promote(expires);
      else if (a === 'delete-all-sets') await this.sas.deleteAll();
      else if (a === 'cancel-timers') this.#cancelTimers();
      else if (a === 'schedule-refresh') this.#scheduleRefresh(expires);
    }
    if (t.state !== from) this.emit('state', t.state, from, event);
  }

  /**
   * Spec digest §15A point 2: the public address comes from the top Via `received` of the 401 to
   * the unprotected REGISTER (`rport`, the mapped SIP port, for information only). A different
   * address than before is a new contact address: this procedure is an initial registration
   * already (24.229 §5.1.1.4.1), so the protected REGISTER simply carries the new one.
   */
  notePublicAddress(res: SipResponse): void {
    const via = viaReceived(res, this.#io.topViaOf(res));
    const pub = via && sharedPublicAddress(via);
    const news = pub && this.#nat.note(pub, this.plainPort);
    if (!pub || !news) return;
    this.step(news.text);
    this.emit('public-address', pub, news.previous);
  }

  addressing(set: SaSet | undefined): { via: string; contact: string } {
    return this.#nat.addressing(set);
  }

  tunnelInnerIp(): string | undefined {
    return this.#nat.tunnelInnerIp();
  }

  // ---- internals --------------------------------------------------------------------------

  #procedure(kind: RegistrationKind): Promise<RegistrationResult> {
    const run = async (): Promise<RegistrationResult> => {
      if (this.#closed) throw new UeError('UE_CLOSED', 'the UE is closed');
      if (kind !== 'initial' && (!isRegistered(this.#state) || !this.sas.current)) {
        if (kind === 'refresh') throw new UeError('UE_NOT_REGISTERED', `re-registration needs a registration (state ${this.#state})`);
        await this.sas.deleteAll(); // nothing registered: just make sure no SA is left
        return { ok: true, kind, expires: 0, impus: [], serviceRoute: [] };
      }
      this.#proc = kind;
      // 'on-demand' (load generators): the unprotected socket lives only as long as the procedure.
      let r: RegistrationResult;
      try {
        r = await runRegistration(this, kind);
      } finally {
        this.#proc = undefined;
        this.#compactSqnState();
        this.sas.pending = undefined; // the offer's ports are the sets' now (or free again)
        await this.#io.closePlain();
      }
      if (r.ok && kind !== 'deregister') {
        // Own copies: slices of the 200 OK would keep its whole text alive as long as the registration.
        // (The same Service-Route for every UE of a load run: one copy.)
        this.#grantedExpires = r.expires;
        this.#impus = r.impus.length === 1 && r.impus[0] === this.id.impu ? SAME_IMPU : r.impus.map(ownString);
        this.#serviceRoute = sharedList(r.serviceRoute);
        this.emit('registered', r);
      } else if (r.ok || kind === 'deregister') {
        // A de-registration that was not confirmed still ends the registration here (every SA gone).
        this.#forgetGrant();
        this.emit('deregistered');
      } else if (this.#state === 'failed' || this.#state === 'deregistered') {
        this.emit('failed', r.reason, r.detail);
      }
      return r;
    };
    const p = this.#queue.then(run, run);
    // Settles to undefined: the last result (its IMPUs, Service-Route…) is not kept with an idle UE;
    // once nothing follows it, the UE holds the shared IDLE instead of a settled promise of its own.
    const q = p.then(ignore, ignore);
    this.#queue = q;
    void q.then(() => {
      if (this.#queue === q) this.#queue = IDLE;
    });
    return p;
  }

  #forgetGrant(): void {
    this.#grantedExpires = undefined;
    this.#impus = this.#serviceRoute = NONE;
  }

  #scheduleRefresh(expiresS: number): void {
    this.#cancelTimers();
    const now = this.#clock.now();
    this.#expiresAt = now + expiresS * 1000;
    // 24.229 §5.1.1.4.1: 600 s before expiry if registered for more than 1200 s, else at half.
    if (this.#o.reRegister !== 'off') {
      const at = expiresS > 1200 ? expiresS - 600 : expiresS / 2;
      this.#refreshTimer = this.#clock.setTimer(at * 1000, () => {
        if (!isRegistered(this.#state) || this.#closed) return;
        this.step(`refreshing the registration (${Math.round(expiresS - at)} s before expiry, 24.229 §5.1.1.4.1)`);
        this.reRegister().catch((e: unknown) => this.step(`re-registration error: ${e instanceof Error ? e.message : String(e)}`));
      });
    }
    this.#expiryTimer = this.#clock.setTimer(expiresS * 1000, () => void this.#onExpired());
  }

  async #onExpired(): Promise<void> {
    await this.#queue; // a refresh under way may still renew it
    if (this.#closed || this.#expiresAt === undefined || this.#clock.now() < this.#expiresAt || !isRegistered(this.#state)) return;
    this.step('the registration expired without a refresh: deleting every SA set');
    await this.fire('expired');
    this.#forgetGrant();
    this.observer?.expired?.(this);
    this.emit('failed', 'registration_expired', 'the registration expired without a refresh');
  }

  #cancelTimers(): void {
    this.#refreshTimer?.();
    this.#expiryTimer?.();
    this.#refreshTimer = this.#expiryTimer = undefined;
  }

  async #openFreePort(used: Set<number>): Promise<number> {
    for (let i = 0; ; i++) {
      const p = choosePort(this.#o.portRange ?? [20000, 60000], used, this.#o.random);
      try {
        await this.#io.ensureEndpoint(p);
        return p;
      } catch (e) {
        used.add(p); // in use by something else (another UE of a load run): pick another (M.7.1 rule 6)
        if (i >= 64) throw e;
      }
    }
  }

  [releaseUnusedEndpoints](): void {
    this.#io.releaseUnused(this.sas);
  }

  [onProtectedRequest](tx: ServerTransaction, request: SipRequest, pctx: ProtectedContext): void {
    const set = pctx.set;
    this.sas.begin(set);
    this.sas.peerUsed(set);
    // In-flight until the final response is sent (Timer J's 32 s of Completed only absorbs
    // retransmissions); onTerminated covers a transaction that ends without one.
    let ended = false;
    const end = (): void => {
      if (!ended) this.sas.end(set);
      ended = true;
    };
    tx.user = { onTerminated: end };
    const incoming: IncomingRequest = { request, set, sa: pctx.sa.name, from: pctx.remote };
    if (this.tracing) this.step(`${request.method} received over ${pctx.sa.name} of ${set.id} from port ${pctx.remote.port}`);
    this.emit('request', incoming);
    const answer = (a: IncomingAnswer): void => {
      // Default response route: by Via (port_pc) through the endpoint it came in on, i.e. SA4 (digest §6.2).
      tx.respond(createResponse(request, a.status, a.reason, a.headers ?? [], a.body ? { body: a.body } : {}));
      if (a.status >= 200) end();
    };
    const fallback = (): IncomingAnswer =>
      DEFAULT_ANSWERED.has(request.method) ? { status: 200 } : { status: 405, headers: [['Allow', [...DEFAULT_ANSWERED].join(', ')]] };
    Promise.resolve()
      .then(() => this.#handler?.(incoming))
      .then((a) => answer(a ?? fallback()))
      .catch(() => answer({ status: 500 }));
  }
}
