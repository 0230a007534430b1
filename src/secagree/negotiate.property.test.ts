// fast-check property of the P-CSCF choice: whatever the offer, policy and NAT state, a success
// names an entry the UE offered, with prot=esp, the mode the NAT test demands and an allowed pair.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allValidPairs, ENCRYPTION_ALGS, INTEGRITY_ALGS, isValidPair } from '../ipsec/algorithms.ts';
import { effectiveEalg, effectiveMod, effectiveProt, type SecMechanism } from './mechanism.ts';
import { negotiate } from './negotiate.ts';
import { isDeprecatedPair, resolveAllowList } from './policy.ts';

const SET = { spiC: 1236, spiS: 1237, portC: 7004, portS: 7005 };
const entry: fc.Arbitrary<SecMechanism> = fc
  .record(
    {
      alg: fc.constantFrom(...INTEGRITY_ALGS, 'hmac-sha-256-128'),
      ealg: fc.constantFrom(...ENCRYPTION_ALGS, 'aes-256-gcm'),
      prot: fc.constantFrom('esp' as const, 'ah' as const),
      mod: fc.constantFrom('trans' as const, 'tun' as const, 'UDP-enc-tun' as const),
      q: fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000),
    },
    { requiredKeys: [] },
  )
  .map((p) => ({ name: 'ipsec-3gpp', ...p, ...SET, extra: [] }));
const offer = fc.array(
  fc.oneof({ weight: 5, arbitrary: entry }, { weight: 1, arbitrary: fc.constant<SecMechanism>({ name: 'tls', extra: [] }) }),
  { maxLength: 8 },
);
const policy = fc.record(
  { allow: fc.subarray(allValidPairs()), allowDeprecated: fc.boolean(), modes: fc.subarray(['trans', 'UDP-enc-tun'] as const) },
  { requiredKeys: [] },
);

test('property: negotiate never returns an (alg, ealg) that is not among the offered entries', () => {
  fc.assert(
    fc.property(offer, policy, fc.boolean(), (ms, pol, nat) => {
      const r = negotiate(ms, pol, { natDetected: nat });
      if (!r.ok) return;
      const m = ms[r.index]!;
      assert.equal(m.name, 'ipsec-3gpp');
      assert.equal(m.alg, r.alg);
      assert.equal(effectiveEalg(m), r.ealg);
      assert.equal(effectiveProt(m), 'esp');
      assert.equal(effectiveMod(m), r.mod);
      assert.equal(r.mod, nat ? 'UDP-enc-tun' : 'trans');
      assert.ok(isValidPair(r.alg, r.ealg));
      assert.ok(resolveAllowList(pol).allow.some((p) => p.alg === r.alg && p.ealg === r.ealg));
      if (!pol.allowDeprecated) assert.ok(!isDeprecatedPair(r));
      assert.deepEqual(r.client, SET);
    }),
    { numRuns: 2000 },
  );
});

test('property: when the policy allows an offered esp entry of the right mode, negotiation succeeds', () => {
  fc.assert(
    fc.property(offer, fc.boolean(), (ms, nat) => {
      const want = nat ? 'UDP-enc-tun' : 'trans';
      const pol = { allowDeprecated: true };
      const allowed = resolveAllowList(pol).allow;
      const possible = ms.some(
        (m) =>
          m.name === 'ipsec-3gpp' &&
          effectiveProt(m) === 'esp' &&
          effectiveMod(m) === want &&
          allowed.some((p) => p.alg === m.alg && p.ealg === effectiveEalg(m)),
      );
      assert.equal(negotiate(ms, pol, { natDetected: nat }).ok, possible);
    }),
    { numRuns: 1000 },
  );
});
