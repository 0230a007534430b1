// REGISTER at the P-CSCF, the executing half (33.203 §7.2-§7.4, Annex H, Annex M; 24.229 §5.2.2):
// every REGISTER and everything that comes of one (the S-CSCF's answer, a temporary set installed,
// a set dropped, a timer) is an event for registration-state.ts `step`; this file runs the actions
// it returns — answers and forwards through the transaction layer, SA sets through the table and
// its slots (ipsec/sa-slots.ts), pending-limit holds and timers — and decides nothing itself.
import { expandKeys } from '../ipsec/keys.ts';
import { sameAddress } from '../ipsec/sa.ts';
import { createSaSet, type SaSet } from '../ipsec/sa-set.ts';
import { NAT_T_PORT, modeFromMod } from '../ipsec/types.ts';
import { createResponse } from '../sip/builders.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import type { ServerTransaction } from '../sip/transaction-manager.ts';
import type { ReceiveContext } from '../sip/transport.ts';
import { wipe } from '../util/bytes.ts';
import { ownString } from '../util/own-string.ts';
import { afterSend, type PcscfCore } from './core.ts';
import { forward, type ForwardHooks } from './proxy.ts';
import { step, type AfterSend, type Arrival, type RegAction, type RegEnv, type RegEvent, type RegState } from './registration-state.ts';
import type { Registration } from './registrations.ts';
import { impiOf, takeAkaKeys, warningValue, type AkaKeys } from './rewrite.ts';

export { registerForCore } from './registration-state.ts';

/** The request being answered, when the event is one. */
interface Io {
  readonly tx: ServerTransaction;
  readonly ctx: ReceiveContext;
  /** The set the REGISTER came over (answers go out over it). */
  readonly set?: SaSet;
}

/** What running one event left to do: the response to relay (answers from the S-CSCF), a follow-up event. */
interface Ran {
  relay: SipResponse | undefined;
  next: Promise<RegEvent> | undefined;
}

let roundIds = 0;

/**
 * What the machine reads from this P-CSCF for one event: a class, not an object literal with arrow
 * functions, so an event allocates one small object (the core, the IMPI and the clock reading) of
 * one shape and no closures; the configuration is read through from the core.
 */
class CoreEnv implements RegEnv {
  readonly now: number;
  constructor(
    readonly core: PcscfCore,
    readonly impi: string,
  ) {
    this.now = core.clock.now();
  }
  get mode(): RegEnv['mode'] {
    return this.core.mode;
  }
  get policy(): RegEnv['policy'] {
    return this.core.policy;
  }
  get natInnerAddress(): RegEnv['natInnerAddress'] {
    return this.core.natInnerAddress;
  }
  get regAwaitAuthMs(): number {
    return this.core.regAwaitAuthMs;
  }
  get address(): string {
    return this.core.address;
  }
  get port(): number {
    return this.core.port;
  }
  get portC(): number {
    return this.core.portC;
  }
  get portS(): number {
    return this.core.portS;
  }
  get pathUri(): string {
    return this.core.pathUri;
  }
  isMine(u: string): boolean {
    return this.core.isMine(u);
  }
  setWithClientPort(ip: string, inner: string | undefined, port: number): string | undefined {
    return this.core.table.setWithClientPort(ip, inner, port)?.id;
  }
  admit(source: string, replacing: boolean) {
    return this.core.limits.admit(source, replacing);
  }
}

/** Runs one event through the machine and executes its actions. */
export function runEvent(core: PcscfCore, reg: Registration, ev: RegEvent, io?: Io): Ran {
  const before: RegState = reg.state;
  const t = step(before, ev, new CoreEnv(core, reg.impi));
  reg.state = t.state;
  core.table.settle(reg, before);
  const ran: Ran = { relay: undefined, next: undefined }; // both fields at once: one shape, no transitions
  for (const a of t.actions) execute(core, reg, a, io, ran);
  core.table.settled(reg, before);
  // Issue 13 §3: what a registration event changed goes to the state store (after the actions:
  // a promotion has made the new set current by now).
  core.persist?.(reg, before);
  return ran;
}

/** An unprotected REGISTER from a UE (initial registration, or a UE that lost its SAs). */
export function onUnprotectedRegister(core: PcscfCore, tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext): void {
  const impi = impiOf(req) ?? '';
  const reg = core.table.getOrNew(impi);
  runEvent(core, reg, { type: 'unprotected-register', req, from: ctx.remote, protocol: ctx.protocol, roundId: ++roundIds }, { tx, ctx });
}

/** A REGISTER over `set`, owned by `reg`: the machine tells the temporary, current and old sets apart. */
export function onRegisterOverSet(
  core: PcscfCore,
  tx: ServerTransaction,
  req: SipRequest,
  ctx: ReceiveContext,
  reg: Registration,
  set: SaSet,
): void {
  runEvent(core, reg, { type: 'register-over-set', req, set: set.id, roundId: ++roundIds }, { tx, ctx, set });
}

function execute(core: PcscfCore, reg: Registration, a: RegAction, io: Io | undefined, ran: Ran): void {
  switch (a.kind) {
    case 'reject': {
      if (!io) return;
      const route = a.after && io.set ? answerRoute(core, reg, io, a.after) : undefined;
      core.reject(io.tx, io.tx.request, io.ctx, a.status, a.reason, a.message, {
        ...(reg.impi !== '' ? { impi: reg.impi } : {}),
        ...(a.headers ? { headers: a.headers } : {}),
        ...(route ? { route } : {}),
      });
      return;
    }
    case 'forward':
      if (io) forwardRegister(core, reg, io, a.out, a.arrival);
      return;
    case 'relay': {
      if (a.securityServer !== undefined) a.res.headers.append('Security-Server', a.securityServer);
      if (a.after && io?.set) io.tx.setResponseRoute(answerRoute(core, reg, io, a.after));
      ran.relay = a.res;
      return;
    }
    case 'refuse-relay': {
      if (!io) return;
      core.refused({
        reason: a.reason,
        message: a.message,
        status: a.status,
        method: 'REGISTER',
        from: io.tx.context.remote,
        impi: reg.impi,
      });
      ran.relay = createResponse(io.tx.request, a.status, undefined, [['Warning', warningValue(core.address, a.message)]]);
      return;
    }
    case 'hold-pending': {
      const give = core.limits.hold(a.source);
      const cancel = core.timers.setTimer(a.ms, () => void runEvent(core, reg, { type: 'round-timeout', roundId: a.roundId }));
      core.table.pending.set(a.roundId, () => {
        cancel();
        give();
      });
      return;
    }
    case 'release-pending':
      core.table.pending.get(a.roundId)?.();
      core.table.pending.delete(a.roundId);
      return;
    case 'install-temporary':
      ran.next = installTemporary(core, reg, a);
      return;
    case 'delete-set': {
      const set = reg.setById(a.set);
      if (set) void core.table.deleteSet(set, a.event, a.reason);
      return;
    }
    case 'promote': {
      const set = reg.setById(a.set);
      if (set) core.table.promote(reg, set, a.lifetime);
      return;
    }
    case 'refresh':
      core.table.refresh(reg, a.lifetime);
      return;
    case 'delete-all':
      void core.table.deleteAll(reg, a.event, a.reason);
      return;
    case 'emit-nat-detected':
      return core.emit('nat-detected', a.payload);
    case 'emit-registered':
      return core.emit('registered', a.payload);
    case 'emit-deregistered':
      return core.emit('deregistered', a.payload);
    default: {
      const never: never = a;
      throw new TypeError(`unknown registration action ${JSON.stringify(never)}`);
    }
  }
}

/** The answer's route over the set its request came on, running `after` once it has gone out. */
function answerRoute(core: PcscfCore, reg: Registration, io: Io, after: AfterSend) {
  const r = core.toUe(io.set!, io.ctx);
  const run =
    after.kind === 'delete-set'
      ? () => {
          const set = reg.setById(after.set);
          if (set) void core.table.deleteSet(set, after.event, after.reason);
        }
      : () => void core.table.deleteAll(reg, 'deleted', after.reason);
  return { to: r.to, transport: afterSend(r.transport, run) };
}

function forwardRegister(core: PcscfCore, reg: Registration, io: Io, out: SipRequest, arrival: Arrival): void {
  // Issue 10 §2: an unprotected REGISTER counts in flight toward the S-CSCF until its final answer or failure.
  const landed = arrival.kind === 'initial' ? core.limits.fly(io.ctx.remote.address) : undefined;
  forward(core, io.tx, out, core.toCore(), new RegisterForward(core, reg, io, arrival, landed));
}

/** What comes back of a forwarded REGISTER goes to the machine: methods on one object, no closures per REGISTER. */
class RegisterForward implements ForwardHooks {
  readonly toUe = true;
  constructor(
    private readonly core: PcscfCore,
    private readonly reg: Registration,
    private readonly io: Io,
    private readonly arrival: Arrival,
    private readonly landed: (() => void) | undefined,
  ) {}

  onResponse(res: SipResponse): SipResponse | undefined | Promise<SipResponse | undefined> {
    if (res.status < 200) return res;
    this.landed?.();
    const { core, reg, io, arrival } = this;
    // ik/ck never reach the UE (forward() strips them again); a 401 to a REGISTER that started a round carries the set's keys.
    const keys = res.status === 401 && arrival.kind !== 'protected' ? takeAkaKeys(res) : undefined;
    let ran: Ran;
    try {
      ran = runEvent(core, reg, { type: 'answered', arrival, res, keys }, io);
    } catch (e) {
      wipe(keys?.ik, keys?.ck);
      throw e;
    }
    // Answered at once (a 200, a refusal): no promise. A 401 waits for its temporary set's install.
    if (!ran.next) {
      wipe(keys?.ik, keys?.ck);
      return ran.relay;
    }
    return (async () => {
      try {
        while (ran.next) ran = runEvent(core, reg, await ran.next, io);
        return ran.relay;
      } finally {
        wipe(keys?.ik, keys?.ck);
      }
    })();
  }

  // No answer from the S-CSCF (408/503 to the UE): a round still waiting for its 401 ends.
  onFailed(): void {
    this.landed?.();
    runEvent(this.core, this.reg, { type: 'forward-failed', arrival: this.arrival });
  }
}

/** Allocates spi_pc/spi_ps, derives the ESP keys (Annex I) and installs the temporary set (33.203 §7.2). */
async function installTemporary(
  core: PcscfCore,
  reg: Registration,
  a: Extract<RegAction, { kind: 'install-temporary' }>,
): Promise<RegEvent> {
  const { round, res } = a;
  // One install at a time per registration: the slots file each installed set as THE temporary
  // one, so an install for a replaced round that ends after its successor's would push the live
  // set out. In order, the stale one is filed first and its 'temporary-installed' deletes it.
  const previous = reg.installing;
  let done!: () => void;
  const mine = (reg.installing = new Promise<void>((r) => (done = r)));
  try {
    await previous;
    const set = buildTemporary(core, reg, round, a.keys, a.expiresAt);
    await core.table.installTemporary(reg, set);
    const encap = reg.encap;
    if (set.config.mode === 'udp-enc-tunnel' && encap && sameAddress(encap.address, round.ueIp)) core.backend.setPeerEncap(set, encap);
    const { client } = round.choice;
    if (core.listens('sa-created'))
      core.emit('sa-created', {
        impi: reg.impi,
        set: set.id,
        mode: set.config.mode,
        alg: round.choice.alg,
        ealg: round.choice.ealg,
        spis: { uc: client.spiC, us: client.spiS, pc: set.config.pcscf.spiC, ps: set.config.pcscf.spiS },
      });
    return {
      type: 'temporary-installed',
      roundId: round.id,
      set: set.id,
      spis: { spiC: set.config.pcscf.spiC, spiS: set.config.pcscf.spiS },
      res,
    };
  } catch (e) {
    return { type: 'temporary-failed', roundId: round.id, message: (e as Error).message, res };
  } finally {
    done();
    // Nothing kept per idle registration: the next install finds no promise to wait for.
    if (reg.installing === mine) reg.installing = undefined;
  }
}

function buildTemporary(
  core: PcscfCore,
  reg: Registration,
  round: Extract<RegAction, { kind: 'install-temporary' }>['round'],
  keys: AkaKeys,
  expiresAt: number,
): SaSet {
  const { alg, ealg, mod, client } = round.choice;
  const [spiC, spiS] = core.backend.allocateSpis(core.address, 2) as [number, number];
  const mode = modeFromMod(mod);
  return createSaSet({
    role: 'pcscf',
    id: ownString(`${reg.impi}#${++setCounter}`), // flat: not three pieces of string per set
    ue: {
      ip: round.ueIp,
      portC: client.portC,
      portS: client.portS,
      spiC: client.spiC,
      spiS: client.spiS,
      ...(round.innerIp ? { innerIp: round.innerIp } : {}),
    },
    pcscf: { ip: core.address, portC: core.portC, portS: core.portS, spiC, spiS },
    alg,
    ealg,
    keys: expandKeys(keys.ik, keys.ck, alg, ealg),
    mode,
    // The UE's encapsulation port is learnt from its first authenticated packet (spec digest §15A.2).
    ...(mode === 'udp-enc-tunnel' ? { encap: { uePort: NAT_T_PORT, pcscfPort: core.encapPort } } : {}),
    expiresAt,
  });
}
let setCounter = 0;
