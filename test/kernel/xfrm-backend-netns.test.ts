// Host kernel, no VM: runs xfrm-backend-netns-body.ts in a fresh network namespace (ip netns add →
// ip netns exec … node --import tsx …; the namespace is deleted in finally). The host kernel has
// XFRM policies but no ESP, so this covers netlink, tags, errors and reconcile; SAs need the VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../../src/ipsec/backends/xfrm/native.ts';

const BODY = fileURLToPath(new URL('./xfrm-backend-netns-body.ts', import.meta.url));
const NS = `imsec-xfrm-${process.pid}`;

function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (ip netns and XFRM need CAP_NET_ADMIN)';
  if (!nativeAvailable()) return 'the imsec native addon is not built (node scripts/build-native.mjs)';
  const r = spawnSync('ip', ['netns', 'add', NS], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `cannot create a network namespace: ${r.error?.message ?? r.stderr.trim()}`;
  return undefined;
}

const skip = whyNot();

test('xfrm netlink against the host kernel in a fresh namespace: tagged policies, errors, reconcile', { skip, timeout: 60_000 }, (t) => {
  try {
    // Without NODE_TEST_CONTEXT the body reports in TAP, not in the runner's binary protocol.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', BODY], { encoding: 'utf8', timeout: 50_000, env });
    for (const line of r.stdout.split('\n')) if (/^(not )?ok \d/.test(line)) t.diagnostic(line);
    assert.equal(r.status, 0, `the namespace body failed:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`);
  } finally {
    spawnSync('ip', ['netns', 'del', NS]);
  }
});
