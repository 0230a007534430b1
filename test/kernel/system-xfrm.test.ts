// The whole system on the xfrm backend in a QEMU VM (Debian's kernel has ESP, this host's not): one
// boot runs system-xfrm-guest.ts (compiled to JS) — xfrm/userspace both ways, both xfrm over UDP and
// TCP, a crash and reconcile, the CLI, `imsec pcscf --state` SIGKILLed and restarted (its kernel SAs
// adopted, orphans removed), the NAT lab — and each guest check becomes a subtest here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { nativeAvailable } from '../../src/ipsec/backends/xfrm/native.ts';
import { compileForGuest, PROJECT_DIR, vmRun, vmUnavailable } from '../vm/vm.ts';

const ADDON = join(PROJECT_DIR, 'native/build/Release/imsec_native.node');
const skip = vmUnavailable() ?? (nativeAvailable() ? undefined : 'the imsec native addon is not built (node scripts/build-native.mjs)');

interface Line {
  check?: string;
  ok?: boolean;
  ms?: number;
  detail?: unknown;
  done?: boolean;
  boot?: { guestUptimeS: number; kernel: string };
}

test(
  'the system with the xfrm backend on a kernel with ESP (VM): registration, MESSAGE both ways, re-registration, de-registration, nothing left; the NAT lab',
  { skip, timeout: 1_020_000 },
  async (t) => {
    const out = mkdtempSync('/tmp/imsec-system-vm-');
    let keep = false;
    try {
      const here = join(PROJECT_DIR, 'test/kernel');
      const [guest] = compileForGuest(
        [join(here, 'system-xfrm-guest.ts'), join(here, 'system-xfrm-agent.ts'), join(PROJECT_DIR, 'src/cli/main.ts')],
        join(out, 'js'),
      );
      // Bare imports (tsx in src/lab, better-sqlite3, raw-socket) resolve from the compiled tree too.
      symlinkSync(join(PROJECT_DIR, 'node_modules'), join(out, 'js', 'node_modules'));
      const r = await vmRun(['node', '--enable-source-maps', guest!, out], {
        ro: true,
        rw: [out],
        env: {
          IMSEC_NATIVE_ADDON: ADDON,
          NODE_PATH: join(PROJECT_DIR, 'node_modules'),
          ...(process.env.SYSTEM_VM_ONLY ? { SYSTEM_VM_ONLY: process.env.SYSTEM_VM_ONLY } : {}),
        },
        timeoutS: 960,
        console: join(out, 'console.log'),
      });
      const lines = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line);
      const boot = lines.find((x) => x.boot)?.boot;
      t.diagnostic(
        `VM run ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}${boot ? `; guest script started ${boot.guestUptimeS.toFixed(1)} s after the guest kernel booted (${boot.kernel})` : ''}`,
      );
      const failed = lines.filter((x) => x.check && !x.ok);
      if (failed.length) {
        keep = true;
        t.diagnostic(`outputs kept in ${out} (agent logs, console)${r.stderr.trim() ? `; guest stderr:\n${r.stderr.slice(-3000)}` : ''}`);
      }
      for (const c of lines.filter((x) => x.check)) {
        await t.test(c.check!, () => {
          if (!c.ok) assert.fail(String(c.detail));
          t.diagnostic(
            `${c.check}: ${c.ms} ms${c.detail ? ` — ${typeof c.detail === 'string' ? c.detail : JSON.stringify(c.detail)}` : ''}`.slice(
              0,
              500,
            ),
          );
        });
      }
      if (!lines.some((x) => x.done) || r.code !== 0) keep = true;
      assert.ok(
        lines.some((x) => x.done),
        `the guest driver did not finish (exit ${r.code}); stderr:\n${r.stderr.slice(-4000)}`,
      );
      assert.equal(r.code, 0, `guest exit code; stderr:\n${r.stderr.slice(-4000)}`);
    } finally {
      if (!keep && !process.env.IMSEC_KEEP_VMOUT) rmSync(out, { recursive: true, force: true });
    }
  },
);
