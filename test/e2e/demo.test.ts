// `imsec demo` as a user runs it: exit status, the JSON summary, and its --pcap/--keylog opened
// in tshark, where every ESP packet must decrypt, authenticate and show SIP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTrue, tsharkFields, tsharkMissing } from '../support/tshark.ts';

const root = new URL('../..', import.meta.url).pathname;

function demo(args: string[]): { status: number | null; json: Record<string, any> } {
  const r = spawnSync(process.execPath, ['bin/imsec.mjs', 'demo', '--json', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.ok(r.stdout.trim().startsWith('{'), `demo printed no JSON: ${r.stderr}`);
  return { status: r.status, json: JSON.parse(r.stdout) };
}

const cases: { mode: string; alg: string; ealg: string; ipv6: boolean }[] = [
  { mode: 'udp-enc-tun', alg: 'hmac-sha-1-96', ealg: 'aes-cbc', ipv6: false },
  { mode: 'udp-enc-tun', alg: 'hmac-md5-96', ealg: 'des-ede3-cbc', ipv6: true },
  { mode: 'udp-enc-tun', alg: 'null', ealg: 'aes-gcm', ipv6: false },
  { mode: 'trans', alg: 'hmac-sha-1-96', ealg: 'null', ipv6: false },
  { mode: 'trans', alg: 'hmac-sha-1-96', ealg: 'aes-cbc', ipv6: true },
];

for (const c of cases) {
  test(`demo ${c.mode} ${c.alg}/${c.ealg} ${c.ipv6 ? 'IPv6' : 'IPv4'}: every step ok, and tshark decrypts and authenticates every ESP packet of its pcap with its keylog`, async (t) => {
    if (c.mode === 'trans' && process.getuid?.() !== 0) return t.skip('mod=trans needs CAP_NET_RAW; run as root');
    const dir = mkdtempSync(join(tmpdir(), 'imsec-demo-test-'));
    try {
      const pcap = join(dir, 'demo.pcap');
      const keylog = join(dir, 'esp_sa');
      const { status, json } = demo([
        '--mode',
        c.mode,
        '--alg',
        c.alg,
        '--ealg',
        c.ealg,
        ...(c.ipv6 ? ['--ipv6'] : []),
        '--pcap',
        pcap,
        '--keylog',
        keylog,
      ]);
      assert.equal(status, 0, JSON.stringify(json.steps));
      assert.deepEqual(
        json.steps.map((s: { step: string; ok: boolean }) => [s.step, s.ok]),
        [
          ['register', true],
          ['message UE → network', true],
          ['message network → UE', true],
          ['re-register', true],
          ['message network → UE over the new set', true],
          ['de-register', true],
        ],
      );
      assert.equal(
        json.sa_sets.filter((s: { side: string }) => s.side === 'pcscf').length,
        2,
        'two SA sets: the first and the re-registration',
      );
      assert.deepEqual(json.leftover_live_sets, { ue: 0, pcscf: 0 });
      const protectedMsgs = json.messages.filter((m: { protected: unknown }) => m.protected);
      assert.ok(protectedMsgs.length >= 10, `${protectedMsgs.length} protected messages`);

      const why = tsharkMissing();
      if (why) return t.skip(why);
      const records = readFileSync(keylog, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('"'));
      assert.equal(records.length, 8, 'four SAs per set, two sets');
      const encap = json.endpoints.pcscf.encap_port as number | null;
      // The protected ports are picked at random: one that tshark knows as another protocol's port
      // would be dissected as that protocol, not SIP (a flake). Decode every one of them as SIP.
      const sipPorts = new Set<number>(
        (json.sa_sets as { sas: { src_port: number; dst_port: number }[] }[]).flatMap((s) =>
          s.sas.flatMap((sa) => [sa.src_port, sa.dst_port]),
        ),
      );
      const frames = tsharkFields(
        pcap,
        [
          '-o',
          'esp.enable_encryption_decode:TRUE',
          '-o',
          'esp.enable_authentication_check:TRUE',
          ...records.flatMap((r: string) => ['-o', `uat:esp_sa:${r}`]),
          ...(encap && encap !== 4500 ? ['-d', `udp.port==${encap},udpencap`] : []),
          ...[...sipPorts].flatMap((p) => ['-d', `udp.port==${p},sip`]),
          '-Y',
          'esp',
        ],
        ['esp.spi', 'esp.sequence', 'esp.icv_good', 'sip.Method', 'sip.Status-Code'],
      );
      assert.equal(frames.length, protectedMsgs.length, 'every protected message is one ESP packet in the pcap');
      for (const f of frames) {
        const label = `spi ${f.get('esp.spi')} seq ${f.get('esp.sequence')}`;
        if (c.alg !== 'null') assert.ok(isTrue(f.get('esp.icv_good')?.[0]), `${label}: ICV checked by tshark`);
        assert.ok(
          (f.get('sip.Method')?.length ?? 0) + (f.get('sip.Status-Code')?.length ?? 0) > 0,
          `${label}: tshark decrypted SIP inside`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('demo refuses bad options with exit 2', () => {
  const r = spawnSync(process.execPath, ['bin/imsec.mjs', 'demo', '--alg', 'null', '--ealg', 'aes-cbc'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cannot be combined/);
});
