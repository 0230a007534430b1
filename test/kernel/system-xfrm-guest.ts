// Runs inside the VM (Debian's kernel, with ESP), driven by system-xfrm.test.ts: core + P-CSCF in one
// network namespace, the UE in another (veth, 192.0.2.0/24, 2001:db8::/64), each side on xfrm or
// userspace; a crash and reconcile; the CLI; `imsec pcscf --state` killed and restarted (its kernel
// SAs adopted); then the NAT lab (src/lab). One JSON line per check.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcChild } from './guest-rpc.ts';
import type { AgentOptions } from './system-xfrm-agent.ts';
import { cliScenario } from './system-xfrm-cli.ts';
import { restartScenario } from './system-xfrm-restart.ts';
import { crashScenario, natScenario, systemScenario, type Ctx, type Scenario } from './system-xfrm-scenarios.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = process.argv[2] ?? '/tmp';
export const NS_NET = 'imsec-sys-net';
export const NS_UE = 'imsec-sys-ue';

function sh(cmd: string): string {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let failed = 0;
const check: Ctx['check'] = async (name, f) => {
  const t0 = Date.now();
  try {
    const detail = await f();
    process.stdout.write(`${JSON.stringify({ check: name, ok: true, ms: Date.now() - t0, detail: detail ?? null })}\n`);
    return true;
  } catch (e) {
    failed++;
    process.stdout.write(`${JSON.stringify({ check: name, ok: false, ms: Date.now() - t0, detail: (e as Error).stack ?? String(e) })}\n`);
    return false;
  }
};

let agents = 0;
const startAgent: Ctx['startAgent'] = (ns, o: AgentOptions) =>
  RpcChild.start(
    `${o.role}@${ns}`,
    ['ip', 'netns', 'exec', ns, process.execPath, '--enable-source-maps', join(HERE, 'system-xfrm-agent.js'), JSON.stringify(o)],
    join(OUT, `agent-${++agents}-${o.role}.log`),
    90_000,
  );

const SCENARIOS: readonly Scenario[] = [
  { id: 'a1', pc: 'xfrm', ue: 'userspace', mode: 'trans', transport: 'udp', family: 4 },
  { id: 'a2', pc: 'xfrm', ue: 'userspace', mode: 'udp-enc-tun', transport: 'udp', family: 4 },
  { id: 'b1', pc: 'userspace', ue: 'xfrm', mode: 'trans', transport: 'udp', family: 4 },
  { id: 'c1', pc: 'xfrm', ue: 'xfrm', mode: 'trans', transport: 'udp', family: 6 },
  { id: 'c2', pc: 'xfrm', ue: 'xfrm', mode: 'udp-enc-tun', transport: 'udp', family: 4 },
  { id: 'c3', pc: 'xfrm', ue: 'xfrm', mode: 'trans', transport: 'tcp', family: 4 },
  { id: 'c4', pc: 'xfrm', ue: 'xfrm', mode: 'udp-enc-tun', transport: 'tcp', family: 6 },
];

async function main(): Promise<void> {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  process.stdout.write(`${JSON.stringify({ boot: { guestUptimeS: uptime, kernel: sh('uname -r').trim() } })}\n`);
  sh(`ip netns add ${NS_NET} && ip netns add ${NS_UE}`);
  sh(`ip link add net0 netns ${NS_NET} type veth peer name ue0 netns ${NS_UE}`);
  for (const [ns, dev, last] of [
    [NS_NET, 'net0', '1'],
    [NS_UE, 'ue0', '2'],
  ] as const) {
    sh(`ip -n ${ns} link set lo up && ip -n ${ns} link set ${dev} up`);
    sh(`ip -n ${ns} addr add 192.0.2.${last}/24 dev ${dev} && ip -n ${ns} addr add 2001:db8::${last}/64 dev ${dev} nodad`);
  }
  const only = process.env.SYSTEM_VM_ONLY?.split(',');
  const ctx: Ctx = { check, sh, startAgent, nsNet: NS_NET, nsUe: NS_UE };
  try {
    for (const sc of SCENARIOS) if (!only || only.includes(sc.id)) await systemScenario(ctx, sc);
    if (!only || only.includes('r')) await crashScenario(ctx);
    // The CLI compiled beside this file (system-xfrm.test.ts compiles src/cli/main.ts too).
    if (!only || only.includes('e')) await cliScenario(ctx, join(HERE, '../../src/cli/main.js'), OUT);
    if (!only || only.includes('x')) await restartScenario(ctx, join(HERE, '../../src/cli/main.js'), OUT);
  } finally {
    sh(`ip netns del ${NS_NET}; ip netns del ${NS_UE}; true`);
  }
  if (!only || only.includes('d')) await natScenario(ctx);
  process.stdout.write(`${JSON.stringify({ done: true, failed })}\n`);
}

await main();
