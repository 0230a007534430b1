// Smoke test of the VM harness (test/vm/vm-run): one boot runs Debian's kernel, not the host's,
// and that kernel has ESP (`ip xfrm state add … proto esp` works); stdout, stderr and the exit
// code come back separately. Skips with vm-run's reason when no VM can run here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { vmRun, vmUnavailable } from './vm.ts';

const unavailable = vmUnavailable();

test(
  'vm-run boots a kernel with ESP and brings back stdout, stderr and the exit code',
  { skip: unavailable, timeout: 180_000 },
  async (t) => {
    // The SA is the lab's: it needs esp4, xfrm_user and the crypto modules, autoloaded from the host's /lib/modules.
    const script = [
      'uname -r',
      'ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1001 reqid 1 mode transport replay-window 32 ' +
        "auth-trunc 'hmac(sha1)' 0x0102030405060708090a0b0c0d0e0f1011121314 96 enc 'cbc(aes)' 0x000102030405060708090a0b0c0d0e0f",
      'ip xfrm state list | grep -c "proto esp spi 0x00001001"',
      'echo to-stderr >&2',
      'exit 7',
    ].join('\n');
    const r = await vmRun(['bash', '-c', script], { ro: true, timeoutS: 150 });
    t.diagnostic(`vm-run total ${(r.ms / 1000).toFixed(1)} s`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(r.code, 7, `exit code (stderr: ${r.stderr.slice(-2000)})`);
    assert.match(lines[0] ?? '', /^\d+\.\d+\S*-amd64$/, 'a Debian kernel release');
    assert.notEqual(lines[0], release(), 'the guest runs its own kernel, not the host one');
    assert.equal(lines[1], '1', 'the ESP SA was added and is listed');
    assert.match(r.stderr, /^to-stderr$/m);
    assert.doesNotMatch(r.stdout, /to-stderr/);
  },
);
