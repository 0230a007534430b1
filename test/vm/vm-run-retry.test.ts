// vm-run's stuck-boot handling, without booting anything: a fake qemu (VM_RUN_QEMU) plays the guest's
// side of the protocol (the console, the output FIFOs, the run directory's `started` and `rc`), one
// scripted behaviour per boot. A first boot that has not started the command after --boot-timeout is
// stopped and booted once more, saying where it was; a command that started is never run twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VM_RUN, vmUnavailable } from './vm.ts';

const unavailable = vmUnavailable();

// Behaviours, one line of $FAKE_DIR/plan per boot:
//   hang      stage 1 starts, then nothing (what CI saw once)
//   run       the command starts, writes to stdout and stderr, exits 7
//   run-hang  the command starts, writes a line, then never ends
//   late      ignores SIGTERM; tries to start the command 3 s in, after vm-run gave the boot up
const FAKE_QEMU = `#!/bin/bash
rundir= serials=()
while [ $# -gt 0 ]; do
  case $1 in
    -fsdev) case $2 in local,id=vmrun,path=*) rundir=\${2#local,id=vmrun,path=}; rundir=\${rundir%%,*} ;; esac; shift 2 ;;
    -serial) serials+=("\${2#file:}"); shift 2 ;;
    *) shift ;;
  esac
done
n=$(( $(cat "$FAKE_DIR/boots" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$FAKE_DIR/boots"
exec 3>"\${serials[0]}" 4>"\${serials[1]}" 5>"\${serials[2]}"
printf 'vm-run init: loading modules\\r\\nvm-run init: mounting the host root (9p)\\r\\n' >&3
finish() { echo "$1" >"$rundir/rc.tmp" && mv "$rundir/rc.tmp" "$rundir/rc"; exit 0; }
case $(sed -n "\${n}p" "$FAKE_DIR/plan") in
  hang) exec sleep 1000 ;;
  run) mkdir "$rundir/started" || exit 1; echo hello >&4; echo to-stderr >&5; finish 7 ;;
  run-hang) mkdir "$rundir/started" || exit 1; echo partial >&4; exec sleep 1000 ;;
  late)
    trap '' TERM
    sleep 3
    if mkdir "$rundir/started" 2>/dev/null; then echo ran >"$FAKE_DIR/late"; finish 0; else echo refused >"$FAKE_DIR/late"; exit 1; fi ;;
esac
`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  boots: number;
  fakeDir: string;
}

async function runWithFake(plan: string[], args: string[]): Promise<Run> {
  const fakeDir = mkdtempSync(join(tmpdir(), 'imsec-fake-qemu-'));
  const qemu = join(fakeDir, 'qemu');
  writeFileSync(qemu, FAKE_QEMU);
  chmodSync(qemu, 0o755);
  writeFileSync(join(fakeDir, 'plan'), `${plan.join('\n')}\n`);
  const child = spawn(VM_RUN, [...args, '--', 'true'], {
    env: { ...process.env, VM_RUN_QEMU: qemu, FAKE_DIR: fakeDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const boots = Number(readFileSync(join(fakeDir, 'boots'), 'utf8'));
  return { code, stdout, stderr, boots, fakeDir };
}

test(
  'a first boot stuck before the command is stopped at --boot-timeout and booted once more; the second runs it',
  { skip: unavailable, timeout: 60_000 },
  async () => {
    const r = await runWithFake(['hang', 'run'], ['--boot-timeout', '2', '--timeout', '40']);
    try {
      assert.equal(r.code, 7, `the command's exit code (stderr: ${r.stderr})`);
      assert.equal(r.boots, 2);
      assert.equal(r.stdout, 'hello\n', 'the output of the command, once');
      assert.match(
        r.stderr,
        /had not started the command after 2 s .*stage 1's last step: mounting the host root \(9p\).*booting once more/,
      );
      assert.match(r.stderr, /^ {2}\| vm-run init: loading modules$/m, "the first boot's console tail");
      assert.match(r.stderr, /^to-stderr$/m);
    } finally {
      rmSync(r.fakeDir, { recursive: true, force: true });
    }
  },
);

test(
  'booted once more only: stuck twice is the overall timeout, saying the command never started',
  { skip: unavailable, timeout: 60_000 },
  async () => {
    const r = await runWithFake(['hang', 'hang', 'run'], ['--boot-timeout', '2', '--timeout', '6']);
    try {
      assert.equal(r.code, 124);
      assert.equal(r.boots, 2);
      assert.match(
        r.stderr,
        /timeout after 6 s, VM stopped \(the command had not started; stage 1's last step: mounting the host root \(9p\)\)/,
      );
    } finally {
      rmSync(r.fakeDir, { recursive: true, force: true });
    }
  },
);

test(
  'a command that started is never run again: a hang after its start is the overall timeout',
  { skip: unavailable, timeout: 60_000 },
  async () => {
    const r = await runWithFake(['run-hang', 'run'], ['--boot-timeout', '3', '--timeout', '6']);
    try {
      assert.equal(r.code, 124);
      assert.equal(r.boots, 1);
      assert.equal(r.stdout, 'partial\n');
      assert.match(r.stderr, /timeout after 6 s, VM stopped \(the command had started\)/);
    } finally {
      rmSync(r.fakeDir, { recursive: true, force: true });
    }
  },
);

test(
  'a guest that reaches the command after vm-run gave its boot up does not run it (the start is claimed once)',
  { skip: unavailable, timeout: 60_000 },
  async () => {
    const r = await runWithFake(['late', 'run'], ['--boot-timeout', '1', '--timeout', '40']);
    try {
      assert.equal(readFileSync(join(r.fakeDir, 'late'), 'utf8'), 'refused\n');
      assert.equal(r.boots, 2);
      assert.equal(r.code, 7);
      assert.equal(r.stdout, 'hello\n', 'the command ran once, in the second boot');
    } finally {
      rmSync(r.fakeDir, { recursive: true, force: true });
    }
  },
);

test('the time limits are whole seconds (shell arithmetic): anything else is a usage error, before any boot', { skip: unavailable }, () => {
  for (const [flag, value] of [
    ['--timeout', '1.5'],
    ['--boot-timeout', 'soon'],
  ]) {
    const r = spawnSync(VM_RUN, [flag!, value!, '--', 'true'], { encoding: 'utf8', env: { ...process.env, VM_RUN_QEMU: '/nonexistent' } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${flag} takes whole seconds, not '${value}'`));
  }
});
