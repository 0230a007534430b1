// Runs inside a fresh network namespace on the host (started by xfrm-backend-netns.test.ts through
// `ip netns exec`): the host kernel has XFRM policies but no ESP, so this checks the real netlink
// plumbing — tagged policies in the SPD, shared selectors, kernel errors with their extended-ack
// text, install rollback on the first NEWSA, reconcile of a crashed run — against the host kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { XfrmBackend } from '../../src/ipsec/backends/xfrm/backend.ts';
import { delPolicyMessage, dumpPolicyMessage, parsePolicy, policyMessage } from '../../src/ipsec/backends/xfrm/messages.ts';
import { ownerTag, selectorOf } from '../../src/ipsec/backends/xfrm/plan.ts';
import { PolicyTable } from '../../src/ipsec/backends/xfrm/policies.ts';
import { XfrmNetlink } from '../../src/ipsec/backends/xfrm/socket.ts';
import { expandKeys } from '../../src/ipsec/keys.ts';
import { createSaSet, type SaSet, type SaSetConfig } from '../../src/ipsec/sa-set.ts';
import { systemClock } from '../../src/util/clock.ts';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
/** `ip -s` prints the selector's user field as "uid N" (without -s only when ip thinks it matters). */
const uids = (tag: number) => (ip('-s', 'xfrm', 'policy').match(new RegExp(`uid ${tag}\\b`, 'g')) ?? []).length;
const IK = new Uint8Array(16).fill(0x11);
const CK = new Uint8Array(16).fill(0x22);

function set(i: number, over: Partial<SaSetConfig> = {}): SaSet {
  return createSaSet({
    role: 'ue',
    ue: { ip: '192.0.2.10', portC: 50000 + 2 * i, portS: 50001, spiC: 0x1000 + 16 * i + 1, spiS: 0x1000 + 16 * i + 2 },
    pcscf: { ip: '192.0.2.20', portC: 5062, portS: 5064, spiC: 0x1000 + 16 * i + 3, spiS: 0x1000 + 16 * i + 4 },
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    keys: expandKeys(IK, CK, 'hmac-sha-1-96', 'aes-cbc'),
    mode: 'transport',
    ...over,
  });
}

/** Writes a set's four policies through a PolicyTable (the SAs themselves need ESP, which this kernel lacks). */
function addPolicies(t: PolicyTable, s: SaSet, tag: number, order: number): void {
  for (const sa of s.all)
    t.add(sa.direction, selectorOf(sa.params, tag), { set: s, sa, reqid: 100 + order, order, peer: () => ({ dst: sa.params.dst }) });
}

const TAG = ownerTag(9);

test('policies land in the SPD with the tag in xfrm_selector.user; two sets share the pc<->us pair', () => {
  const nl = new XfrmNetlink();
  const t = new PolicyTable(nl, 0, Date.now);
  const a = set(0);
  a.apply('authenticated');
  const b = set(1); // re-registration: new port_uc, same port_us
  addPolicies(t, a, TAG, 1);
  addPolicies(t, b, TAG, 2);
  const text = ip('xfrm', 'policy');
  assert.equal((text.match(/dir (in|out)/g) ?? []).length, 6, text);
  assert.equal(uids(TAG), 6, 'every selector carries the tag, and the kernel kept it');
  const dumped = nl.dump(dumpPolicyMessage(nl.nextSeq()), 'dump', parsePolicy);
  assert.deepEqual(
    dumped.map((p) => p.sel?.user),
    new Array(6).fill(TAG),
  );
  // UE side: SA4 (us -> pc) is outbound and shared; it points at the current set A until a send asks for B.
  const sel4 = selectorOf(a.sas.SA4.params, TAG);
  const spiOf = () => /sport 50001 dport 5062[^]*?dir out[^]*?proto esp spi (0x[0-9a-f]+)/.exec(ip('xfrm', 'policy'))?.[1];
  assert.equal(Number(spiOf()), a.sas.SA4.spi);
  t.point('out', sel4, b);
  assert.equal(Number(spiOf()), b.sas.SA4.spi);
  t.remove('out', sel4, b);
  assert.equal(Number(spiOf()), a.sas.SA4.spi, 'B left: back to A');
  nl.close(); // "crash": the table is dropped without deleting anything
});

test("kernel errors come back with their errno; the tag is part of a policy's identity", () => {
  const nl = new XfrmNetlink();
  const sel = {
    family: 4 as const,
    src: '203.0.113.1',
    dst: '203.0.113.2',
    prefixSrc: 32,
    prefixDst: 32,
    sport: 1,
    dport: 2,
    proto: 0,
    user: TAG,
  };
  const p = {
    sel,
    dir: 'out' as const,
    priority: 0,
    hardSeconds: 0,
    tmpl: { family: 4 as const, src: '203.0.113.1', dst: '203.0.113.2', spi: 0x5000, reqid: 1, mode: 'transport' as const },
  };
  nl.request(policyMessage(p, { seq: nl.nextSeq() }), 'NEWPOLICY');
  assert.throws(() => nl.request(policyMessage(p, { seq: nl.nextSeq() }), 'NEWPOLICY again'), { code: 'XFRM_KERNEL', errno: 17 });
  nl.request(delPolicyMessage({ dir: 'out', sel }, nl.nextSeq()), 'DELPOLICY');
  assert.throws(() => nl.request(delPolicyMessage({ dir: 'out', sel }, nl.nextSeq()), 'DELPOLICY again'), {
    code: 'XFRM_KERNEL',
    errno: 2,
  });
  // The same selector with another user field is another policy: the tag is part of the identity.
  nl.request(policyMessage({ ...p, sel: { ...sel, user: 0 } }, { seq: nl.nextSeq() }), 'foreign NEWPOLICY');
  nl.close();
});

test("reconcile at create() deletes the crashed run's tagged policies only; install rolls back at NEWSA", async () => {
  const other = new XfrmNetlink();
  addPolicies(new PolicyTable(other, 0, Date.now), set(5), ownerTag(10), 1); // another instance
  other.close();
  ip(
    'xfrm',
    'policy',
    'add',
    'src',
    '198.51.100.1/32',
    'dst',
    '198.51.100.2/32',
    'dir',
    'out',
    'tmpl',
    'src',
    '198.51.100.1',
    'dst',
    '198.51.100.2',
    'proto',
    'esp',
    'mode',
    'transport',
  );
  assert.equal(uids(TAG), 6);
  const b = await XfrmBackend.create({ instance: 9, clock: systemClock });
  const after = ip('xfrm', 'policy');
  assert.equal(uids(TAG), 0, after);
  assert.equal(uids(ownerTag(10)), 4, 'the other instance keeps its policies');
  assert.match(after, /198\.51\.100\.1/, 'the foreign policy stays');
  assert.match(after, /203\.0\.113\.1/, 'the untagged policy stays');
  // This kernel has no ESP: the first NEWSA fails, nothing of ours is left.
  await assert.rejects(b.install(set(7)), (e: Error & { code?: string; errno?: number }) => {
    assert.equal(e.code, 'XFRM_INSTALL_FAILED');
    assert.match(e.message, /NEWSA SA1 .*(EPROTONOSUPPORT|ENOPROTOOPT|EINVAL)/);
    // Extended ack: the kernel's own words follow the errno (kernels that set one for this error).
    if (e.errno === 93) assert.match(e.message, /EPROTONOSUPPORT: Requested type not found/);
    return true;
  });
  assert.equal(ip('xfrm', 'state').trim(), '');
  const spis = b.allocateSpis('192.0.2.10', 3);
  assert.ok(spis.every((s) => s >= 256));
  await b.close();
  assert.equal(uids(ownerTag(10)), 4);
});
