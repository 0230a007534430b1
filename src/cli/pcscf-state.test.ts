// `imsec pcscf --state`: what the flags accept and refuse, and how the stored ports settle
// port_pc/port_ps (the restored SAs are bound to them).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../util/clock.ts';
import { InputError } from '../util/errors.ts';
import { parsePcscfArgs } from './pcscf.ts';
import { instanceOfNode } from './backend-choice.ts';
import { PROBE_INSTANCE } from '../ipsec/backends/xfrm/preflight.ts';
import { openPcscfState } from './pcscf-state.ts';

const dir = mkdtempSync(join(tmpdir(), 'imsec-cli-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const base = { listen: '127.0.0.1:5060', portC: '5064', portS: '5066', scscf: '127.0.0.1:6060' };

test('--state: a file or URL with a fixed --listen port (refused with port 0); xfrm too, its instance fixed by the node', () => {
  assert.equal(parsePcscfArgs({ ...base, state: 'x.db', stateKeyFile: 'k' }).state, 'x.db');
  assert.throws(
    () => parsePcscfArgs({ ...base, listen: '127.0.0.1:0', state: 'x.db' }),
    (e) => e instanceof InputError && /fixed --listen port/.test(e.message),
  );
  assert.equal(parsePcscfArgs({ ...base, backend: 'xfrm', state: 'x.db' }).backend, 'xfrm');
  // The same node gets the same xfrm instance in every run (its kernel SAs are recognised as its own).
  assert.equal(instanceOfNode('127.0.0.1:5060'), instanceOfNode('127.0.0.1:5060'));
  assert.notEqual(instanceOfNode('127.0.0.1:5060'), instanceOfNode('127.0.0.1:5061'));
  for (const n of ['127.0.0.1:5060', '[2001:db8::1]:5060']) assert.ok(instanceOfNode(n) >= 0 && instanceOfNode(n) < PROBE_INSTANCE);
});

test('stored ports: taken when none are given, a different one refused, a bad key file refused', () => {
  const file = join(dir, 's.db');
  const clock = new ManualClock();
  const first = openPcscfState({ state: file, node: '127.0.0.1:5060', portC: 5064, portS: 5066, clock, onError: () => {} });
  first.state.setNodeInfo({ portC: first.portC, portS: first.portS });
  first.state.close();
  const again = openPcscfState({ state: file, node: '127.0.0.1:5060', portC: 0, portS: 0, clock, onError: () => {} });
  assert.deepEqual([again.portC, again.portS], [5064, 5066]);
  again.state.close();
  assert.throws(
    () => openPcscfState({ state: file, node: '127.0.0.1:5060', portC: 5070, portS: 5066, clock, onError: () => {} }),
    /--port-c 5070: the stored registrations of 127.0.0.1:5060 use 5064/,
  );
  const other = openPcscfState({ state: file, node: '127.0.0.1:5061', portC: 5070, portS: 5072, clock, onError: () => {} });
  assert.deepEqual([other.portC, other.portS], [5070, 5072], 'another node has rows of its own');
  other.state.close();
  writeFileSync(join(dir, 'bad.key'), 'not a key');
  assert.throws(
    () => openPcscfState({ state: file, stateKeyFile: join(dir, 'bad.key'), node: 'n', portC: 0, portS: 0, clock, onError: () => {} }),
    /64 hex digits/,
  );
});
