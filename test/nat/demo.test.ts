// `imsec demo --nat` as a user runs it: exit status, the JSON summary (the five demo steps plus the
// idle pause, where the NAT was detected, the mapping, the keepalives), its public-side capture
// decrypted by tshark with its keylog, and the polite refusal without root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTrue, tsharkFields, tsharkMissing } from '../support/tshark.ts';
import { skipNoLab } from './support.ts';

const root = new URL('../..', import.meta.url).pathname;

test(
  'imsec demo --nat --json: every step through the NAT, the NAT facts, no lab left; tshark decrypts its public-side capture',
  { skip: skipNoLab, timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'imsec-demo-nat-'));
    try {
      const pcap = join(dir, 'nat.pcap');
      const keylog = join(dir, 'esp_sa');
      const t0 = Date.now();
      const r = spawnSync(process.execPath, ['bin/imsec.mjs', 'demo', '--nat', '--json', '--pcap', pcap, '--keylog', keylog], {
        cwd: root,
        encoding: 'utf8',
        timeout: 100_000,
      });
      t.diagnostic(`demo --nat took ${Date.now() - t0} ms`);
      assert.ok(r.stdout.trim().startsWith('{'), `no JSON: ${r.stderr}`);
      const j = JSON.parse(r.stdout);
      assert.equal(r.status, 0, JSON.stringify(j.steps));
      assert.deepEqual(
        j.steps.map((s: { step: string; ok: boolean }) => [s.step, s.ok]),
        [
          ['register', true],
          ['message UE → network', true],
          ['idle (NAT keepalives)', true],
          ['message network → UE', true],
          ['re-register', true],
          ['de-register', true],
        ],
      );
      assert.equal(j.nat.detected.via, '198.51.100.2:5060', 'top Via: the private address');
      assert.equal(j.nat.detected.source.address, '203.0.113.1', 'packet source: the NAT public address');
      assert.equal(j.nat.ue_public_address.address, '203.0.113.1');
      assert.equal(j.nat.pcscf_view.ip, '203.0.113.1');
      assert.equal(j.nat.pcscf_view.inner_ip, '198.51.100.2');
      assert.equal(typeof j.nat.pcscf_view.port_uenc, 'number');
      assert.match(j.nat.pcscf_view.contact, /@203\.0\.113\.1:\d+$/);
      assert.ok(j.nat.idle_s > j.nat.nat_udp_timeout_s, 'the pause outlasts the NAT UDP timeout');
      assert.ok(j.nat.keepalives_sent_idle >= j.nat.idle_s - 2, `${j.nat.keepalives_sent_idle} keepalives in ${j.nat.idle_s} s`);
      assert.ok(j.nat.keepalives_received_by_pcscf >= j.nat.keepalives_sent_idle);
      assert.deepEqual(j.leftover_live_sets, { ue: 0, pcscf: 0 });
      const sets = new Set(j.sa_rows.filter((x: { side: string }) => x.side === 'pcscf').map((x: { set: string }) => x.set));
      assert.equal(sets.size, 2, 'registration and re-registration');
      assert.ok(
        j.sa_rows
          .filter((x: { side: string }) => x.side === 'pcscf')
          .every((x: { src: string; dst: string }) => [x.src, x.dst].includes('203.0.113.1')),
        'the P-CSCF SAs point at the public address',
      );
      const protectedMsgs = j.messages.filter((m: { protected: unknown }) => m.protected);
      assert.ok(protectedMsgs.length >= 10, `${protectedMsgs.length} protected messages`);
      const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      assert.ok(!left.includes(j.lab.prefix), `the lab ${j.lab.prefix} is gone: ${left}`);

      const why = tsharkMissing();
      if (why) return t.skip(why);
      const records = readFileSync(keylog, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('"'));
      assert.equal(records.length, 8);
      const frames = tsharkFields(
        pcap,
        [
          '-o',
          'esp.enable_encryption_decode:TRUE',
          '-o',
          'esp.enable_authentication_check:TRUE',
          ...records.flatMap((x) => ['-o', `uat:esp_sa:${x}`]),
          '-Y',
          'esp',
        ],
        [
          'frame.number',
          'ip.src',
          'ip.dst',
          'ip.reassembled_in',
          'udp.length',
          'esp.spi',
          'esp.sequence',
          'esp.icv_good',
          'sip.Method',
          'sip.Status-Code',
        ],
      );
      assert.equal(frames.length, protectedMsgs.length, 'every protected message is one ESP packet on the public side');
      // All frames whose ICV tshark did not verify, with the SA rows of their SPI: one such failure in CI
      // (2026-12-05) did not reproduce in 11 runs, so a failure says everything it can.
      const show = (f: Map<string, string[]>) => [...f].map(([k, v]) => `${k}=${v.join('|')}`).join(' ');
      const bad = frames.filter((f) => !isTrue(f.get('esp.icv_good')?.[0]));
      const rowsOf = (spi: string | undefined) =>
        JSON.stringify(
          j.sa_rows.filter((r: Record<string, unknown>) =>
            Object.values(r).some((v) => String(v) === spi || (spi !== undefined && String(v) === String(Number(spi)))),
          ),
        );
      assert.deepEqual(
        bad.map(show),
        [],
        `ICV not verified by tshark: ${bad.map((f) => `${show(f)} rows ${rowsOf(f.get('esp.spi')?.[0])}`).join('; ')}`,
      );
      for (const f of frames) {
        assert.ok((f.get('sip.Method')?.length ?? 0) + (f.get('sip.Status-Code')?.length ?? 0) > 0, 'SIP inside');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('imsec demo --nat without root: exit 2, "needs root"', (t) => {
  const asRoot = process.getuid?.() === 0;
  if (asRoot && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return t.skip('root, and no runuser to drop privileges');
  const argv = [process.execPath, 'bin/imsec.mjs', 'demo', '--nat'];
  const r = asRoot
    ? spawnSync('runuser', ['-u', 'nobody', '--', ...argv], { cwd: root, encoding: 'utf8', timeout: 30_000 })
    : spawnSync(argv[0]!, argv.slice(1), { cwd: root, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /demo --nat needs root \(network namespaces\)/);
});
