// Kamailio 5.6's P-CSCF (Debian's kamailio + kamailio-ims-modules, ims_ipsec_pcscf on kernel XFRM)
// against imsec's UE, with imsec's S-CSCF behind it, in a QEMU VM (Debian's kernel has ESP, this
// host's may not): one boot runs kamailio-guest.ts (compiled to JS); each guest check is a subtest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { nativeAvailable } from '../../src/ipsec/backends/xfrm/native.ts';
import { compileForGuest, PROJECT_DIR, vmRun, vmUnavailable } from '../vm/vm.ts';

const ADDON = join(PROJECT_DIR, 'native/build/Release/imsec_native.node');
const KAMAILIO_MODULE = '/usr/lib/x86_64-linux-gnu/kamailio/modules/ims_ipsec_pcscf.so';

function kamailioUnavailable(): string | undefined {
  const v = spawnSync('kamailio', ['-v'], { encoding: 'utf8' });
  if (v.error || v.status !== 0)
    return 'kamailio is not installed (apt-get install kamailio kamailio-ims-modules, or scripts/install-sysdeps.sh as root)';
  if (!existsSync(KAMAILIO_MODULE)) return `kamailio-ims-modules is not installed (no ${KAMAILIO_MODULE})`;
  return undefined;
}

/**
 * The CLI the command-line check runs: the shipped bundle (dist/cli/imsec.js, what bin/imsec.mjs
 * runs) when `npm run build` made it from these sources, else the sources compiled for the guest.
 */
async function shippedCli(): Promise<string | undefined> {
  const bundle = join(PROJECT_DIR, 'dist/cli/imsec.js');
  if (!existsSync(bundle)) return undefined;
  const { distIsFresh } = (await import(join(PROJECT_DIR, 'scripts/dist-fresh.mjs'))) as { distIsFresh: (root: string) => boolean };
  return distIsFresh(PROJECT_DIR) ? bundle : undefined;
}

const skip =
  vmUnavailable() ??
  kamailioUnavailable() ??
  (nativeAvailable() ? undefined : 'the imsec native addon is not built (node scripts/build-native.mjs)');

interface Line {
  check?: string;
  ok?: boolean;
  ms?: number;
  detail?: unknown;
  done?: boolean;
  boot?: { guestUptimeS: number; kernel: string; kamailio: string };
}

test(
  'imsec UE against Kamailio 5.6 P-CSCF (VM): algorithms, both backends, MESSAGE both ways, refresh, de-registration, the quirks; imsec P-CSCF as control',
  { skip, timeout: 1_200_000 },
  async (t) => {
    const out = mkdtempSync('/tmp/imsec-kamailio-vm-');
    let keep = false;
    try {
      const here = join(PROJECT_DIR, 'test/kernel');
      const [guest] = compileForGuest(
        [
          join(here, 'kamailio-guest.ts'),
          join(here, 'kamailio-agent.ts'),
          join(here, 'system-xfrm-agent.ts'),
          join(PROJECT_DIR, 'src/cli/main.ts'),
        ],
        join(out, 'js'),
      );
      symlinkSync(join(PROJECT_DIR, 'node_modules'), join(out, 'js', 'node_modules'));
      const cliJs = (await shippedCli()) ?? join(out, 'js/src/cli/main.js');
      t.diagnostic(`the CLI check runs ${cliJs}`);
      const r = await vmRun(['node', '--enable-source-maps', guest!, out, join(PROJECT_DIR, 'test/kamailio/pcscf.cfg')], {
        ro: true,
        rw: [out],
        env: {
          IMSEC_NATIVE_ADDON: ADDON,
          NODE_PATH: join(PROJECT_DIR, 'node_modules'),
          KAM_CLI_JS: cliJs,
          ...(process.env.KAM_VM_ONLY ? { KAM_VM_ONLY: process.env.KAM_VM_ONLY } : {}),
          ...(process.env.KAM_PCAP ? { KAM_PCAP: '1' } : {}),
        },
        timeoutS: 1100,
        console: join(out, 'console.log'),
      });
      const lines = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Line);
      const boot = lines.find((x) => x.boot)?.boot;
      t.diagnostic(
        `VM run ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}${boot ? `; guest script started ${boot.guestUptimeS.toFixed(1)} s after boot (${boot.kernel}, ${boot.kamailio})` : ''}`,
      );
      const failed = lines.filter((x) => x.check && !x.ok);
      if (failed.length) {
        keep = true;
        t.diagnostic(
          `outputs kept in ${out} (kamailio.log, agent logs, console)${r.stderr.trim() ? `; guest stderr:\n${r.stderr.slice(-3000)}` : ''}`,
        );
      }
      for (const c of lines.filter((x) => x.check)) {
        await t.test(c.check!, () => {
          if (!c.ok) assert.fail(String(c.detail));
          t.diagnostic(
            `${c.check}: ${c.ms} ms${c.detail ? ` — ${typeof c.detail === 'string' ? c.detail : JSON.stringify(c.detail)}` : ''}`.slice(
              0,
              600,
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
