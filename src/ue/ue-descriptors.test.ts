// Descriptors of a UE (issue 9: 100k load UEs in one process under a 20k descriptor limit). By
// default the unprotected socket lives as long as the UE and, with userspace ESP, a clear socket
// guards each protected port; a load UE ('on-demand', no guards) holds none once registered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { registerPair, startPair } from './_fake-pcscf.ts';

const fds = (): number => readdirSync('/proc/self/fd').length;
/**
 * The count settles at `n` or below: a module loader or the test runner may hold a descriptor for a
 * moment, when `base` was read or later (CI once saw the count fall one below a base read during such
 * a moment). What the UE holds is what may not exceed it.
 */
async function settlesAt(n: number, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (fds() > n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.ok(fds() <= n, `${what}: ${fds()} descriptors, at most ${n} expected`);
}
const linux = (() => {
  try {
    fds();
    return true;
  } catch {
    return false;
  }
})();

test('a load UE holds no descriptor once registered, and still registers, answers MT requests and de-registers', async (t) => {
  if (!linux) return t.skip('counts descriptors in /proc/self/fd (Linux)');
  const p = await startPair({ plainSocket: 'on-demand', guardProtectedPorts: false }, 'udp-enc-tunnel', '127.0.0.1', 'userspace');
  try {
    const base = fds();
    assert.equal(p.ue.plainPort, 0, 'no unprotected socket before the registration');
    const done = p.ue.register();
    const r1 = await p.fake.next();
    assert.ok(p.ue.plainPort > 0);
    await settlesAt(base + 1, 'one socket while the initial registration runs');
    const ch = await p.fake.challenge(r1);
    const r2 = await p.fake.next();
    await p.fake.ok(r2, ch.set!, 600);
    assert.ok((await done).ok);
    assert.equal(p.ue.state, 'registered');
    assert.equal(p.ue.plainPort, 0);
    await settlesAt(base, 'none once registered');
    assert.equal((await p.fake.request(ch.set!, 'MESSAGE')).pctx?.sa.name, 'SA4', 'MT request answered over the SAs');
    const dereg = p.ue.deregister();
    const rx = await p.fake.next();
    assert.ok(rx.pctx, 'the de-registration goes over the SAs');
    await p.fake.reply(rx, 200);
    assert.ok((await dereg).ok);
    assert.deepEqual(p.ue.status().sets, []);
    await settlesAt(base, 'none after the de-registration');
  } finally {
    await p.close();
  }
});

test('by default a UE keeps its unprotected socket and a guard on each protected port (userspace)', async (t) => {
  if (!linux) return t.skip('counts descriptors in /proc/self/fd (Linux)');
  const before = fds();
  const p = await startPair({}, 'udp-enc-tunnel', '127.0.0.1', 'userspace');
  try {
    await registerPair(p);
    assert.ok(p.ue.plainPort > 0);
    const n = fds();
    // The pair adds the fake P-CSCF's and both backends' sockets; the UE's own are the plain one + 2 guards.
    await p.ue.close();
    await settlesAt(n - 3, 'closing the UE closes its plain socket and the two protected-port guards');
  } finally {
    await p.close();
  }
  assert.ok(fds() <= before + 1);
});
