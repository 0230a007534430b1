// Interop oracle: the Linux kernel's own ESP (Debian's kernel in a QEMU VM, test/vm/vm-run) against
// our userspace ESP, transport and UDP-enc-tun, IPv4 and IPv6, every algorithm pair, all four SAs of
// a 33.203 set both ways, replays and forgeries both ways, and tshark on the capture. One VM boot
// for the file; the guest writes JSON and this file asserts on it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { allValidPairs } from '../../src/ipsec/algorithms.ts';
import { ESP_DROPS } from '../../src/ipsec/sa.ts';
import { PROJECT_DIR, compileForGuest, vmRun, vmUnavailable, type VmRunResult } from '../vm/vm.ts';
import type { SaName } from '../../src/ipsec/sa.ts';
import { isTrue, tsharkFields, tsharkMissing } from '../support/tshark.ts';
import {
  type BatchResult,
  type GuestResult,
  MESSAGES_PER_SA,
  type OurSa,
  type ReceivedMessage,
  FORGED_SEQ_DELTA,
  SA_NAMES,
  type SetResult,
  batches,
  setId,
  spiOf,
} from './interop-grid.ts';
import type { XfrmStateStats } from './xfrm-parse.ts';

const unavailable = vmUnavailable();
const GUEST = join(PROJECT_DIR, 'test/kernel/guest-esp-interop.ts');
const HELPERS = ['guest-userspace-agent.ts', 'guest-kernel-app.ts'].map((f) => join(PROJECT_DIR, 'test/kernel', f));

/** XFRM error counters that must not move in the kernel's netns (replay and ICV errors: checked separately). */
const KERNEL_ERRORS = [
  'XfrmInError',
  'XfrmInBufferError',
  'XfrmInHdrError',
  'XfrmInNoStates',
  'XfrmInStateModeError',
  'XfrmInStateExpired',
  'XfrmInStateMismatch',
  'XfrmInStateInvalid',
  'XfrmInTmplMismatch',
  'XfrmInNoPols',
  'XfrmInPolBlock',
  'XfrmInPolError',
  'XfrmOutError',
  'XfrmOutBundleGenError',
  'XfrmOutBundleCheckError',
  'XfrmOutNoStates',
  'XfrmOutStateProtoError',
  'XfrmOutStateModeError',
  'XfrmOutStateSeqError',
  'XfrmOutStateExpired',
  'XfrmOutPolBlock',
  'XfrmOutPolDead',
  'XfrmOutPolError',
  'XfrmOutStateInvalid',
  'XfrmAcquireError',
];

describe('Linux kernel ESP ⇄ imsec userspace ESP, in a QEMU VM', { skip: unavailable }, () => {
  let run: VmRunResult | undefined;
  let result: GuestResult | undefined;
  let outDir = '';
  let failures = 0;

  before(
    async () => {
      // Outputs (result.json, capture.pcap + esp_sa for Wireshark, the xfrm scripts, kernel states,
      // logs, console) in a writable share; kept on failure or with IMSEC_KEEP_VMOUT=1.
      mkdirSync('/tmp/vmout', { recursive: true });
      outDir = mkdtempSync('/tmp/vmout/esp-interop-');
      const [guestJs] = compileForGuest([GUEST, ...HELPERS], join(outDir, 'js'));
      // --ro: the project is read through the host-root overlay (cached), the out dir is the only share.
      // NODE_PATH: the compiled tree lives outside the project; raw-socket is found through it.
      run = await vmRun(['node', '--enable-source-maps', guestJs!, outDir], {
        ro: true,
        rw: [outDir],
        env: { NODE_PATH: join(PROJECT_DIR, 'node_modules') },
        // Typically 25-75 s; a loaded 2-core host has taken 3 min. The watchdog is the backstop.
        timeoutS: 420,
        console: join(outDir, 'console.log'),
      });
      if (existsSync(join(outDir, 'result.json'))) result = JSON.parse(readFileSync(join(outDir, 'result.json'), 'utf8')) as GuestResult;
    },
    { timeout: 450_000 },
  );

  after(() => {
    if (failures === 0 && run?.code === 0 && !process.env['IMSEC_KEEP_VMOUT']) rmSync(outDir, { recursive: true, force: true });
    else if (outDir) console.error(`esp-interop: outputs kept in ${outDir} (result.json, capture.pcap, esp_sa, logs)`);
  });

  const guard = async (t: { diagnostic(s: string): void }, fn: () => void | Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      failures++;
      t.diagnostic(`outputs: ${outDir}`);
      throw e;
    }
  };

  it('the guest ran the whole grid in one VM boot', (t) =>
    guard(t, () => {
      assert.ok(run, 'vm-run ran');
      assert.ok(result, `no result.json; vm-run exit ${run!.code}; stderr:\n${run!.stderr.slice(-4000)}`);
      t.diagnostic(
        `VM run ${(run!.ms / 1000).toFixed(1)} s; guest ${((result!.timings['total'] ?? 0) / 1000).toFixed(1)} s (ready after: ${['netns', 'helpers', 'warm-up'].map((k) => `${k} ${((result!.timings[k] ?? 0) / 1000).toFixed(1)} s`).join(', ')}); kernel ${result!.kernel}; batches ${result!.batches.map((b) => `${b.batch.name} ${(b.ms / 1000).toFixed(1)} s`).join(', ')}`,
      );
      assert.deepEqual(result!.errors, [], 'guest errors');
      assert.equal(run!.code, 0, `guest exit code; stderr:\n${run!.stderr.slice(-4000)}`);
      assert.equal(result!.batches.length, batches().length);
    }));

  it("tshark authenticates and decrypts every captured ESP packet, the kernel's and ours, and sees the forged ones fail (AES-GMAC: unknown to tshark 4.0)", (t) =>
    guard(t, () => {
      const missing = tsharkMissing();
      if (missing) return void t.skip(missing);
      assert.ok(result, 'guest result (see the first test)');
      const capture = join(outDir, 'capture.pcap');
      const records = readFileSync(join(outDir, 'esp_sa'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('"'));
      const frames = tsharkFields(
        capture,
        [
          '-o',
          'esp.enable_encryption_decode:TRUE',
          '-o',
          'esp.enable_authentication_check:TRUE',
          ...records.flatMap((r) => ['-o', `uat:esp_sa:${r}`]),
        ],
        ['frame.number', 'esp.spi', 'esp.sequence', 'esp.icv_good', 'sip.Call-ID'],
      );
      const bySpi = new Map<number, { set: SetResult; sa: SaName; frames: number }>();
      for (const b of result!.batches)
        for (const set of b.sets) for (const sa of SA_NAMES) bySpi.set(spiOf(set.spec, sa), { set, sa, frames: 0 });
      for (const f of frames) {
        const spiText = f.get('esp.spi')?.[0];
        if (!spiText) continue; // not ESP (nothing else matches the capture filter)
        const hit = bySpi.get(parseInt(spiText, 16));
        assert.ok(hit, `frame ${f.get('frame.number')}: unknown SPI ${spiText}`);
        hit.frames++;
        if (hit.set.spec.alg === 'aes-gmac') continue;
        const forged = Number(f.get('esp.sequence')?.[0]) === MESSAGES_PER_SA + FORGED_SEQ_DELTA;
        assert.equal(
          isTrue(f.get('esp.icv_good')?.[0]),
          !forged,
          `frame ${f.get('frame.number')} (${hit.set.spec.id} ${hit.sa}${forged ? ', forged' : ''}): tshark's ICV verdict`,
        );
        if (forged) continue;
        const callId = f.get('sip.Call-ID')?.[0] ?? '';
        assert.ok(
          callId.startsWith(`${hit.set.spec.id}-${hit.sa}-`),
          `frame ${f.get('frame.number')} (${hit.set.spec.id} ${hit.sa}): decrypted Call-ID ${JSON.stringify(callId)}`,
        );
      }
      // Each SA: its messages plus the replay; exact when tcpdump lost nothing.
      const short: string[] = [];
      for (const { set, sa, frames: n } of bySpi.values()) {
        if (set.installError || set.userspaceError) continue;
        const want = MESSAGES_PER_SA + set.attacks.filter((a) => a.sa === sa && !a.error).length;
        if (n !== want) short.push(`${set.spec.id} ${sa}: ${n}/${want}`);
      }
      if (result!.captureDrops === 0) assert.deepEqual(short, [], 'captured ESP packets per SA');
      else t.diagnostic(`tcpdump dropped ${result!.captureDrops} packets; SAs with missing frames: ${short.join(', ') || 'none'}`);
      t.diagnostic(`${frames.length} frames checked`);
    }));

  for (const b of batches()) {
    describe(`${b.mode}, ${b.family}`, () => {
      const batch = (): BatchResult => {
        const r = result?.batches.find((x) => x.batch.name === b.name);
        assert.ok(r, `no result for batch ${b.name} (see the first test)`);
        return r;
      };

      it('the kernel netns counted no XFRM errors; our SAD counted no unknown SPI, malformed or unroutable packet', (t) =>
        guard(t, () => {
          const r = batch();
          for (const k of KERNEL_ERRORS) {
            assert.equal(r.xfrmStat.exchange[k] ?? 0, 0, `${k} during the exchange`);
            assert.equal(r.xfrmStat.attacks[k] ?? 0, 0, `${k} during the attacks`);
          }
          for (const k of ['XfrmInStateSeqError', 'XfrmInStateProtoError'])
            assert.equal(r.xfrmStat.exchange[k] ?? 0, 0, `${k} during the exchange`);
          // During the attacks: exactly one replay error per replay and one protocol (ICV) error per forgery.
          const toKernel = (kind: string) =>
            r.sets.flatMap((s) => s.attacks).filter((a) => a.to === 'kernel' && a.kind === kind && !a.error).length;
          assert.equal(r.xfrmStat.attacks['XfrmInStateSeqError'], toKernel('replay'), 'XfrmInStateSeqError = the replays we sent');
          assert.equal(r.xfrmStat.attacks['XfrmInStateProtoError'], toKernel('forged'), 'XfrmInStateProtoError = the forgeries we sent');
          for (const k of ['unknownSpi', 'malformed', 'noEndpoint', 'nonEsp']) assert.equal(r.backendCounters[k] ?? 0, 0, `our ${k}`);
        }));

      for (const { alg, ealg } of allValidPairs()) {
        const id = setId(b.mode, b.family, alg, ealg);
        it(`${alg} / ${ealg}: SIP both ways over SA1–SA4, counters, replays and forgeries refused both ways`, (t) =>
          guard(t, () => {
            const r = batch();
            const s = r.sets.find((x) => x.spec.id === id);
            assert.ok(s, `set ${id} missing`);
            // A kernel without the algorithm says so ("not found" / unknown algorithm): skip, not fail.
            if (s.installError && /not found|No such file|unknown|not supported/i.test(s.installError)) {
              t.skip(`the kernel refused ${alg}/${ealg}: ${s.installError}`);
              return;
            }
            assert.equal(s.installError, undefined, 'the kernel accepted our xfrmCommands export');
            assert.equal(s.userspaceError, undefined, 'our backend installed the set');
            checkSet(r, s);
          }));
      }
    });
  }
});

/** Everything for one SA set; see the guest for how each fact was obtained. */
function checkSet(r: BatchResult, s: SetResult): void {
  const { spec } = s;
  const sendErrors = s.sent.filter((m) => m.error).map((m) => `${m.sender} ${m.sa}: ${m.error}`);
  assert.deepEqual(sendErrors, [], 'send errors');
  assert.equal(s.sent.length, SA_NAMES.length * MESSAGES_PER_SA);

  // 1. Every message arrived exactly once, intact, on the right ports (and on our side, the right SA).
  const key = (m: { text: string }) => m.text;
  const kRx = new Map(r.kernelReceived.map((m) => [key(m), m] as const));
  const uRx = new Map<string, ReceivedMessage[]>();
  for (const m of r.userspaceReceived) uRx.set(key(m), [...(uRx.get(key(m)) ?? []), m]);
  for (const m of s.sent) {
    if (m.sender === 'userspace') {
      const got = r.kernelReceived.filter((x) => x.text === m.text);
      assert.equal(got.length, 1, `${m.sa} userspace→kernel message ${JSON.stringify(m.text.slice(0, 60))} arrived ${got.length}×`);
      const g = kRx.get(m.text)!;
      assert.deepEqual([g.local.port, g.remote.port], [m.to.port, m.from.port], `${m.sa} ports at the kernel app`);
      assert.equal(canon(g.remote.address), canon(m.from.address), `${m.sa} source address at the kernel app`);
    } else {
      const got = uRx.get(m.text) ?? [];
      assert.equal(got.length, 1, `${m.sa} kernel→userspace message ${JSON.stringify(m.text.slice(0, 60))} arrived ${got.length}×`);
      const g = got[0]!;
      assert.equal(g.setId, spec.id, `${m.sa} delivered with its SA set`);
      assert.equal(g.sa, m.sa, `${m.sa} arrived on the SA the kernel should have used`);
      assert.deepEqual([g.local.port, g.remote.port], [m.to.port, m.from.port], `${m.sa} inner ports`);
      if (spec.mode === 'udp-enc-tunnel') assert.equal(g.outerEncapSrcPort, 4500, `${m.sa} kernel's encapsulation source port`);
    }
  }

  // 2. The kernel's per-SA view after the exchange: every SA carried exactly the messages, no failures;
  // sequence numbers 1..N on both sides (kernel oseq on its outbound SAs, seq on its inbound ones).
  const ours = r.ours.exchanged[spec.id];
  assert.ok(ours, 'our counters');
  for (const sa of SA_NAMES) {
    const o: OurSa = ours.find((x) => x.name === sa)!;
    const k: XfrmStateStats | undefined = r.kernelStates.exchanged[`0x${o.spi.toString(16)}`];
    assert.ok(k, `${sa}: kernel state for SPI 0x${o.spi.toString(16)}`);
    assert.equal(k.packets, MESSAGES_PER_SA, `${sa}: kernel packets`);
    assert.deepEqual(
      [k.replay, k.replayWindowDrops, k.failed],
      [0, 0, 0],
      `${sa}: kernel replay / window / integrity failures after the exchange`,
    );
    assert.equal(o.packets, MESSAGES_PER_SA, `${sa}: our packets`);
    assert.deepEqual(nonZero(o.drops), {}, `${sa}: our drops after the exchange`);
    assert.equal(o.seq, MESSAGES_PER_SA, `${sa}: our ${o.direction === 'in' ? 'highest received' : 'last sent'} sequence number`);
    assert.equal(o.direction === 'in' ? k.oseq : k.seq, MESSAGES_PER_SA, `${sa}: kernel ${o.direction === 'in' ? 'oseq' : 'seq'}`);
    if (spec.mode === 'udp-enc-tunnel') assert.deepEqual(k.encap, { sport: 4500, dport: 4500 }, `${sa}: kernel encap`);
  }

  // 3. Attacks: a replay is refused by the window (kernel "replay", our 'replay'), a forged packet
  // (fresh sequence number, old ICV) by the ICV check (kernel "failed", our 'icv'), and neither moves
  // the window (highest sequence number still N) nor delivers anything.
  assert.equal(s.attacks.length, 4, 'a replay and a forgery each way');
  const attacked = r.ours.attacked[spec.id]!;
  for (const a of s.attacks) {
    const what = `${a.kind} ${a.sa} to the ${a.to}`;
    assert.equal(a.error, undefined, `${what}: ${a.error}`);
    const o: OurSa = attacked.find((x) => x.name === a.sa)!;
    const k: XfrmStateStats = r.kernelStates.attacked[`0x${a.spi.toString(16)}`]!;
    if (a.to === 'kernel') {
      const want = a.kind === 'replay' ? [1, 0] : [0, 1];
      assert.deepEqual([k.replay, k.failed], want, `${what}: kernel replay / failed counters`);
      assert.deepEqual(
        [k.packets, k.seq],
        [MESSAGES_PER_SA, MESSAGES_PER_SA],
        `${what}: kernel packets / highest sequence number unchanged`,
      );
    } else {
      const want = Object.fromEntries(ESP_DROPS.map((d) => [d, d === (a.kind === 'replay' ? 'replay' : 'icv') ? 1 : 0]));
      assert.deepEqual(o.drops, want, `${what}: our drop counters`);
      assert.deepEqual([o.packets, o.seq], [MESSAGES_PER_SA, MESSAGES_PER_SA], `${what}: our packets / highest sequence number unchanged`);
    }
  }
  // Every SA that was not attacked: untouched.
  for (const o of attacked) {
    if (!s.attacks.some((a) => a.to === 'userspace' && a.sa === o.name))
      assert.deepEqual(nonZero(o.drops), {}, `${o.name}: our drops after the attacks`);
    const k = r.kernelStates.attacked[`0x${o.spi.toString(16)}`]!;
    if (!s.attacks.some((a) => a.to === 'kernel' && a.sa === o.name))
      assert.deepEqual([k.replay, k.failed], [0, 0], `${o.name}: kernel counters after the attacks`);
  }
  const late = [...r.lateKernelReceived, ...r.lateUserspaceReceived].filter((m) => s.sent.some((x) => x.text === m.text));
  assert.deepEqual(late, [], 'nothing delivered after the exchange (an attack got through)');
}

function nonZero(drops: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(drops).filter(([, v]) => v !== 0));
}

/** IPv6 textual forms differ (node prints ::ffff: or compressed forms); compare lower-case, trimmed. */
function canon(a: string): string {
  return a.toLowerCase().replace(/^::ffff:/, '');
}
