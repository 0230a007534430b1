// `imsec demo`: the main job. Core, P-CSCF and UE on loopback, one full protected registration
// life cycle, a readable timeline and the SA table; exits 1 when any step fails. `--nat` runs the
// same flow through a real NAT in network namespaces (33.203 Annex M; root only).
import { guardProcess } from './serve-guard.ts';
import { writableFileArg } from './identity-args.ts';
import type { Command } from 'commander';
import {
  ENCRYPTION_ALGS,
  INTEGRITY_ALGS,
  type EncryptionAlg,
  type IntegrityAlg,
  isEncryptionAlg,
  isIntegrityAlg,
  isValidPair,
} from '../ipsec/algorithms.ts';
import { InputError } from '../util/errors.ts';
import { EXIT_CHECK_FAILED, printTable } from './output.ts';
import { jsonSummary, saTable, timelineLines } from './demo/report.ts';
import { runDemo } from './demo/run.ts';
import { natDemoUnavailable, runNatDemo } from './demo/nat.ts';
import { natFactLines, natJsonSummary, natSaTable, natTimelineLines } from './demo/nat-report.ts';

interface DemoCliOptions {
  mode: string;
  alg: string;
  ealg: string;
  ipv6?: boolean;
  pcap?: string;
  keylog?: string;
  json?: boolean;
  nat?: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run core (S-CSCF + HSS), P-CSCF and UE on loopback: register, MESSAGE both ways, re-register, de-register')
    .option('--mode <mode>', 'trans (raw ESP, needs CAP_NET_RAW) or udp-enc-tun (no privileges)', 'udp-enc-tun')
    .option('--alg <name>', `integrity algorithm: ${INTEGRITY_ALGS.join(', ')}`, 'hmac-sha-1-96')
    .option('--ealg <name>', `encryption algorithm: ${ENCRYPTION_ALGS.join(', ')}`, 'aes-cbc')
    .option('--ipv6', 'run on ::1 instead of 127.0.0.1')
    .option('--pcap <file>', 'write what crossed the UE ⇄ P-CSCF wire to a pcap file')
    .option('--keylog <file>', 'write the SAs as Wireshark esp_sa lines (key material: handle with care)')
    .option('--json', 'print a machine-readable summary instead of the timeline')
    .option(
      '--nat',
      'through a real NAT: UE behind nftables masquerade in network namespaces, core in another (root only; --mode does not apply, the P-CSCF picks it)',
    )
    .action(async (o: DemoCliOptions) => {
      if (o.mode !== 'trans' && o.mode !== 'udp-enc-tun')
        throw new InputError(`--mode must be trans or udp-enc-tun, got ${JSON.stringify(o.mode)}`);
      if (!isIntegrityAlg(o.alg)) throw new InputError(`--alg: unknown integrity algorithm ${JSON.stringify(o.alg)}`);
      if (!isEncryptionAlg(o.ealg)) throw new InputError(`--ealg: unknown encryption algorithm ${JSON.stringify(o.ealg)}`);
      if (!isValidPair(o.alg, o.ealg)) throw new InputError(`--alg ${o.alg} cannot be combined with --ealg ${o.ealg}`);
      // Output files are checked before the demo starts: a bad path must not cost a whole run.
      if (o.pcap !== undefined) writableFileArg(o.pcap, '--pcap');
      if (o.keylog !== undefined) writableFileArg(o.keylog, '--keylog');
      const json = o.json === true;
      const unguard = guardProcess();
      try {
        await demo({ ...o, mode: o.mode, alg: o.alg, ealg: o.ealg }, json);
      } finally {
        unguard();
      }
    });
}

async function demo(
  o: DemoCliOptions & { mode: 'trans' | 'udp-enc-tun'; alg: IntegrityAlg; ealg: EncryptionAlg },
  json: boolean,
): Promise<void> {
  if (o.nat) return natDemo(o, json);
  const result = await runDemo({
    mode: o.mode,
    alg: o.alg,
    ealg: o.ealg,
    ipv6: o.ipv6 === true,
    ...(o.pcap ? { pcap: o.pcap } : {}),
    ...(o.keylog ? { keylog: o.keylog } : {}),
    ...(json ? {} : { progress: (l: string) => process.stderr.write(l + '\n') }),
  });
  if (json) {
    process.stdout.write(
      JSON.stringify(jsonSummary(result, { mode: o.mode, alg: o.alg, ealg: o.ealg, ipv6: o.ipv6 === true }), null, 2) + '\n',
    );
  } else {
    const out = (s: string) => process.stdout.write(s + '\n');
    out(`imsec demo — ${o.mode}, ${o.alg} / ${o.ealg}, ${o.ipv6 ? 'IPv6 (::1)' : 'IPv4 (127.0.0.1)'}`);
    out('');
    out('Timeline (each SIP message once, from its sender):');
    for (const l of timelineLines(result)) out(l);
    out('');
    printSteps(out, result.steps);
    out('SA sets (every set either side installed, with its final state and counters):');
    printTable(saTable(result) as unknown as Record<string, string | number>[], false);
    if (o.pcap) out(`\npcap: ${o.pcap}`);
    if (o.keylog) out(`keys (Wireshark esp_sa): ${o.keylog}`);
    out(result.ok ? '\nAll steps succeeded.' : '\nA step failed.');
  }
  if (!result.ok) process.exitCode = EXIT_CHECK_FAILED;
}

async function natDemo(o: DemoCliOptions, json: boolean): Promise<void> {
  const why = natDemoUnavailable(o.ipv6 === true);
  if (why) throw new InputError(why);
  const result = await runNatDemo({
    alg: o.alg,
    ealg: o.ealg,
    ipv6: o.ipv6 === true,
    ...(o.pcap ? { pcap: o.pcap } : {}),
    ...(o.keylog ? { keylog: o.keylog } : {}),
    ...(json ? {} : { progress: (l: string) => process.stderr.write(l + '\n') }),
  });
  const opts = { nat: true, alg: o.alg, ealg: o.ealg, ipv6: o.ipv6 === true };
  if (json) {
    process.stdout.write(JSON.stringify(natJsonSummary(result, opts), null, 2) + '\n');
  } else {
    const out = (s: string) => process.stdout.write(s + '\n');
    out(`imsec demo --nat — ${o.alg} / ${o.ealg}, ${o.ipv6 ? 'IPv6 (NAT66)' : 'IPv4'}, UE behind a real NAT`);
    out('');
    out('NAT:');
    for (const l of natFactLines(result)) out(`  ${l}`);
    out('');
    out('Timeline (each SIP message once, from its sender; the addresses its SIP stack used):');
    for (const l of natTimelineLines(result)) out(l);
    out('');
    printSteps(out, result.steps);
    out('SA sets (every set either side installed; outer addresses as each side sees them):');
    printTable(natSaTable(result), false);
    if (o.pcap) out(`\npcap (public side of the NAT): ${o.pcap}`);
    if (o.keylog) out(`keys (Wireshark esp_sa): ${o.keylog}`);
    out(result.ok ? '\nAll steps succeeded; the lab is torn down.' : '\nA step failed; the lab is torn down.');
  }
  if (!result.ok) process.exitCode = EXIT_CHECK_FAILED;
}

/** The step list both demos print: one line per step, ok or FAIL, its time and what happened. */
function printSteps(out: (s: string) => void, steps: readonly { step: string; ok: boolean; ms: number; detail: string }[]): void {
  out('Steps:');
  const width = Math.max(22, ...steps.map((s) => s.step.length));
  for (const s of steps) out(`  ${s.ok ? 'ok  ' : 'FAIL'}  ${s.step.padEnd(width)} ${String(s.ms).padStart(5)} ms  ${s.detail}`);
  out('');
}
