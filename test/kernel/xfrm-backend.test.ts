// The xfrm backend against a real Linux ESP: one VM boot (test/vm harness, Debian's kernel) runs
// xfrm-backend-guest.ts, which drives one backend per network namespace through the scenarios in
// xfrm-backend-scenarios.ts; each guest check becomes a subtest here. Skips without a VM or addon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compileForGuest, PROJECT_DIR, vmRun, vmUnavailable } from '../vm/vm.ts';
import { nativeAvailable } from '../../src/ipsec/backends/xfrm/native.ts';

const ADDON = join(PROJECT_DIR, 'native/build/Release/imsec_native.node');
const skip = vmUnavailable() ?? (nativeAvailable() ? undefined : 'the imsec native addon is not built (node scripts/build-native.mjs)');

test(
  'xfrm backend on a Linux kernel with ESP (VM): SA sets, UDP and TCP over kernel SAs, rollback, refresh, reconcile, close',
  { skip, timeout: 900_000 },
  async (t) => {
    const out = mkdtempSync('/tmp/imsec-xfrm-vm-');
    try {
      const here = join(PROJECT_DIR, 'test/kernel');
      const [guest] = compileForGuest([join(here, 'xfrm-backend-guest.ts'), join(here, 'xfrm-backend-peer.ts')], out);
      const r = await vmRun(['node', guest!], {
        ro: true,
        rw: [out],
        env: {
          IMSEC_NATIVE_ADDON: ADDON,
          NODE_PATH: join(PROJECT_DIR, 'node_modules'),
          ...(process.env.XFRM_VM_ONLY ? { XFRM_VM_ONLY: process.env.XFRM_VM_ONLY } : {}),
        },
        timeoutS: 840,
      });
      t.diagnostic(`VM run ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}`);
      const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
      const results = lines.map((l) => JSON.parse(l) as { check?: string; ok?: boolean; ms?: number; detail?: unknown; done?: boolean });
      if (results.some((x) => x.check && !x.ok) && r.stderr.trim()) t.diagnostic(`guest stderr:\n${r.stderr.slice(-3000)}`);
      for (const c of results.filter((x) => x.check)) {
        await t.test(c.check!, () => {
          if (!c.ok) assert.fail(String(c.detail));
          t.diagnostic(
            `${c.check}: ${c.ms} ms${c.detail ? ` — ${typeof c.detail === 'string' ? c.detail : JSON.stringify(c.detail)}` : ''}`.slice(
              0,
              400,
            ),
          );
        });
      }
      assert.ok(
        results.some((x) => x.done),
        `the guest driver did not finish (exit ${r.code}); stderr:\n${r.stderr.slice(-4000)}`,
      );
      assert.equal(r.code, 0, `guest exit code; stderr:\n${r.stderr.slice(-4000)}`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
);
