// The registration state machine: the paths of 24.229 §5.1.1.2–§5.1.1.6 and 33.203 §7.3–§7.4,
// and that every other (state, event) pair is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UeError } from './errors.ts';
import { computeTransition, isRegistered, transition, type RegEvent, type RegState } from './registration-state.ts';

const STATES: RegState[] = [
  'idle',
  'registering',
  'authenticating',
  'registered',
  'reregistering',
  'reauthenticating',
  'deregistering',
  'deregistered',
  'failed',
  'closed',
];
const EVENTS: RegEvent[] = [
  'register',
  'reregister',
  'deregister',
  'challenge',
  'invalid-challenge',
  'abandon',
  'fallback',
  'ok',
  'reject',
  'expired',
  'close',
];

function run(start: RegState, ...events: RegEvent[]): RegState {
  return events.reduce((s, e) => transition(s, e).state, start);
}

test('initial registration: idle → registering → authenticating → registered, promoting the temporary set', () => {
  assert.equal(run('idle', 'register', 'challenge'), 'authenticating');
  assert.deepEqual(transition('authenticating', 'ok'), { state: 'registered', actions: ['promote-temporary', 'schedule-refresh'] });
});

test('invalid challenges and abandon go back to registering and drop the temporary set', () => {
  assert.deepEqual(transition('authenticating', 'invalid-challenge'), { state: 'registering', actions: ['discard-temporary'] });
  assert.deepEqual(transition('registering', 'abandon'), { state: 'registering', actions: ['discard-temporary'] });
  assert.deepEqual(transition('authenticating', 'reject'), {
    state: 'failed',
    actions: ['discard-temporary', 'cancel-timers', 'delete-all-sets'],
  });
});

test('re-registration: a refusal keeps the registration; a lost P-CSCF falls back to an initial registration', () => {
  assert.equal(run('registered', 'reregister', 'challenge', 'ok'), 'registered');
  assert.deepEqual(transition('reauthenticating', 'reject'), { state: 'registered', actions: ['discard-temporary'] });
  assert.deepEqual(transition('reregistering', 'fallback'), { state: 'registering', actions: ['delete-all-sets'] });
  assert.deepEqual(transition('registered', 'expired'), { state: 'failed', actions: ['cancel-timers', 'delete-all-sets'] });
});

test('de-registration ends in deregistered with every set deleted, whatever the answer', () => {
  for (const e of ['ok', 'reject', 'fallback'] as const) {
    assert.deepEqual(transition('deregistering', e), { state: 'deregistered', actions: ['cancel-timers', 'delete-all-sets'] });
  }
  assert.equal(run('registered', 'deregister', 'challenge', 'ok'), 'deregistered');
});

test('close is accepted everywhere; closed accepts nothing else', () => {
  for (const s of STATES) assert.equal(transition(s, 'close').state, 'closed');
  for (const e of EVENTS.filter((x) => x !== 'close')) assert.throws(() => transition('closed', e), UeError);
});

test('illegal events throw UE_ILLEGAL_TRANSITION (e.g. a 401 while registered, reregister while idle)', () => {
  assert.throws(
    () => transition('registered', 'challenge'),
    (e: unknown) => e instanceof UeError && e.code === 'UE_ILLEGAL_TRANSITION',
  );
  assert.throws(() => transition('idle', 'reregister'), UeError);
  assert.throws(() => transition('failed', 'ok'), UeError);
});

test('isRegistered: registered and while refreshing', () => {
  assert.deepEqual(STATES.filter(isRegistered), ['registered', 'reregistering', 'reauthenticating']);
});

test('the memoised transition equals the rules for every (state, event), twice over; illegal ones throw both times; results are frozen', () => {
  for (let round = 0; round < 2; round++)
    for (const s of STATES)
      for (const e of EVENTS) {
        let want: ReturnType<typeof computeTransition> | UeError;
        try {
          want = computeTransition(s, e);
        } catch (err) {
          want = err as UeError;
        }
        if (want instanceof UeError) {
          assert.throws(
            () => transition(s, e),
            (err: unknown) => err instanceof UeError && err.code === want.code && err.message === want.message,
          );
          continue;
        }
        const got = transition(s, e);
        assert.deepEqual({ state: got.state, actions: [...got.actions] }, { state: want.state, actions: [...want.actions] }, `${s} + ${e}`);
        assert.ok(Object.isFrozen(got) && Object.isFrozen(got.actions));
        assert.equal(transition(s, e), got, 'the same object again');
      }
});
