// The UE's registration state machine (24.229 §5.1.1.2, §5.1.1.4, §5.1.1.5, §5.1.1.6; 33.203
// §7.2–§7.4): one string-literal union, one transition function; actions are data the Ue executes.
import { UeError } from './errors.ts';

/**
 *            register()                   valid 401: temporary SA set,
 *   idle ------------> registering ---------------------------------> authenticating
 *   deregistered  ^      |  ^  | invalid 401 answered (mac/sync)         |  |  | 401 again:
 *   failed -------+      |  +--+ 401 without Security-Server: abandon    |  |  | new temporary set
 *          ^             |       (new Call-ID)                           |  |  +--+
 *          |  403, other |  <---------- invalid 401 / abandon -----------+  |
 *          |  final, Timer F                                                | 200 OK (protected):
 *          +-------------+--------------- 403, other final, Timer F --------+ temporary → current
 *          |                                                                v
 *          | registration expired    reregister() / refresh timer     +------------+
 *          +----------------------- reregistering <-----------------  | registered |
 *          |                          |   401: temp set ->            +------------+
 *          |                          |   reauthenticating --200-->         ^  | deregister()
 *          |                          |   403 / final: keep the current set-+  v
 *          |                          |   Timer F (P-CSCF lost the SAs):     deregistering
 *          |                          +-- fallback --> registering           | 200, final, Timer F:
 *          |                                                                 v  delete every set
 *          +--------------------------------------------------------- deregistered
 *   close(): any state -> closed (every SA set removed)
 */
export type RegState =
  | 'idle'
  | 'registering'
  | 'authenticating'
  | 'registered'
  | 'reregistering'
  | 'reauthenticating'
  | 'deregistering'
  | 'deregistered'
  | 'failed'
  | 'closed';

/** What happens to a registration: calls of the application, answers of the network, timers. */
export type RegEvent =
  /** register(): an unprotected initial REGISTER goes out (24.229 §5.1.1.2). */
  | 'register'
  /** reRegister() or the refresh timer: a REGISTER over the current set (§5.1.1.4.1). */
  | 'reregister'
  /** deregister(): Expires 0 over the current set (§5.1.1.6). */
  | 'deregister'
  /** A valid 401: temporary set built, REGISTER with the AKA response sent over it (33.203 §7.2). */
  | 'challenge'
  /** A 401 whose AUTN failed (MAC or SQN) was answered (33.203 §6.1.2.2/§6.1.2.3). */
  | 'invalid-challenge'
  /** A 401 without (or with an incomplete) Security-Server: start again, new Call-ID (§5.1.1.5.1). */
  | 'abandon'
  /** The P-CSCF no longer answers over the current set: unprotected initial registration (digest §8 rule 6). */
  | 'fallback'
  /** 2xx to a REGISTER with a non-zero expiry, or to the de-registration. */
  | 'ok'
  /** 403, any other final failure, Timer F, too many invalid challenges. */
  | 'reject'
  /** The registration ran out without a refresh. */
  | 'expired'
  | 'close';

/** What the UE must do after a transition: data, executed by `Ue`. */
export type RegAction =
  /** Delete the temporary SA set, keep the current one (digest §8 rule 8). */
  | 'discard-temporary'
  /** Temporary → current, the previous current → old (digest §8 rules 2–4). */
  | 'promote-temporary'
  /** Remove every SA set (digest §8 rule 7, §10.4). */
  | 'delete-all-sets'
  /** Start the refresh and expiry timers of the registration (24.229 §5.1.1.4.1). */
  | 'schedule-refresh'
  | 'cancel-timers';

/** The result of `transition`: the new state and the actions to execute. */
export interface RegTransition {
  readonly state: RegState;
  readonly actions: readonly RegAction[];
}

const to = (state: RegState, ...actions: RegAction[]): RegTransition => ({ state, actions });

function illegal(state: RegState, event: RegEvent): never {
  throw new UeError('UE_ILLEGAL_TRANSITION', `registration: event "${event}" is not allowed in state "${state}"`);
}

/**
 * Transitions already computed, per state and event: the function is pure, so each (state, event) is
 * worked out once and its frozen result handed out again (a registration fires ~6 events; a load run's
 * UEs would otherwise build an object and an actions array for each).
 */
const memo = new Map<RegState, Map<RegEvent, RegTransition>>();

/** The one function that moves registration states. Illegal events throw UeError. The result is shared and frozen. */
export function transition(state: RegState, event: RegEvent): RegTransition {
  let byEvent = memo.get(state);
  if (byEvent === undefined) memo.set(state, (byEvent = new Map()));
  let t = byEvent.get(event);
  if (t === undefined) {
    const c = computeTransition(state, event); // throws for an illegal event: nothing cached
    byEvent.set(event, (t = Object.freeze({ state: c.state, actions: Object.freeze(c.actions) })));
  }
  return t;
}

/** {@link transition} without the memo (the rules themselves; tests compare the two). */
export function computeTransition(state: RegState, event: RegEvent): RegTransition {
  if (event === 'close') return state === 'closed' ? to('closed') : to('closed', 'cancel-timers', 'delete-all-sets');
  switch (state) {
    case 'idle':
    case 'deregistered':
    case 'failed':
      if (event === 'register') return to('registering');
      if (event === 'expired') return to(state);
      return illegal(state, event);
    case 'registering':
    case 'authenticating':
      if (event === 'challenge') return to('authenticating');
      if (event === 'invalid-challenge' || event === 'abandon') return to('registering', 'discard-temporary');
      if (event === 'ok') return to('registered', 'promote-temporary', 'schedule-refresh');
      // 33.203 §7.3 / digest §10.1: the temporary set goes. An initial registration that failed
      // leaves no registration, so a set kept from before it (re-registration via an initial one,
      // 24.229 §5.1.1.4.1) goes too: failed means no SA.
      if (event === 'reject') return to('failed', 'discard-temporary', 'cancel-timers', 'delete-all-sets');
      // The registration an initial registration was meant to replace may still run out meanwhile.
      if (event === 'expired') return to(state);
      return illegal(state, event);
    case 'registered':
      if (event === 'reregister') return to('reregistering');
      if (event === 'deregister') return to('deregistering');
      // 24.229 §5.1.1.4.1: binding to a new contact address takes an initial registration.
      if (event === 'register') return to('registering');
      if (event === 'expired') return to('failed', 'cancel-timers', 'delete-all-sets');
      return illegal(state, event);
    case 'reregistering':
    case 'reauthenticating':
      if (event === 'challenge') return to('reauthenticating');
      if (event === 'invalid-challenge') return to('reregistering', 'discard-temporary');
      // 24.228 R2-1a: a re-REGISTER answered 200 without a challenge keeps the current set.
      if (event === 'ok') return to('registered', 'promote-temporary', 'schedule-refresh');
      // The refresh failed: the registration stays valid until it expires (digest §8 rule 8).
      if (event === 'reject') return to('registered', 'discard-temporary');
      if (event === 'abandon') return to('registering', 'discard-temporary');
      if (event === 'fallback') return to('registering', 'delete-all-sets');
      if (event === 'expired') return to('failed', 'cancel-timers', 'delete-all-sets');
      return illegal(state, event);
    case 'deregistering':
      // A challenged de-registration is answered like any other (temporary set, protected REGISTER).
      if (event === 'challenge' || event === 'invalid-challenge') return to('deregistering');
      // Digest §8 rule 7: no registered IMPU left ⇒ delete every SA; also when the network refused
      // or did not answer (the user asked to leave).
      if (event === 'ok' || event === 'reject' || event === 'fallback' || event === 'expired' || event === 'abandon') {
        return to('deregistered', 'cancel-timers', 'delete-all-sets');
      }
      return illegal(state, event);
    case 'closed':
      return illegal(state, event);
    default: {
      const never: never = state;
      throw new UeError('UE_ILLEGAL_TRANSITION', `registration: unknown state ${String(never)}`);
    }
  }
}

/** States in which the UE holds a valid registration (requests may go out over the current set). */
export function isRegistered(state: RegState): boolean {
  return state === 'registered' || state === 'reregistering' || state === 'reauthenticating';
}
