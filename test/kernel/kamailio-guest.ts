// Runs inside the VM, driven by kamailio.test.ts: Kamailio 5.6's P-CSCF (test/kamailio/pcscf.cfg,
// ims_ipsec_pcscf on the kernel's XFRM) and imsec's S-CSCF in one network namespace, UEs in
// another; then the same scenario against imsec's own P-CSCF as the control. One JSON line per check.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcChild } from './guest-rpc.ts';
import type { KamAgentOptions } from './kamailio-agent.ts';
import { kamailioScenarios, type KCtx } from './kamailio-scenarios.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = process.argv[2] ?? '/tmp';
const CFG = process.argv[3]!;
const NS_NET = 'imsec-kam-net';
const NS_UE = 'imsec-kam-ue';

function sh(cmd: string): string {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let failed = 0;
const check: KCtx['check'] = async (name, f) => {
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
const startAgent = (ns: string, o: KamAgentOptions): Promise<RpcChild> =>
  RpcChild.start(
    `${o.role}@${ns}`,
    ['ip', 'netns', 'exec', ns, process.execPath, '--enable-source-maps', join(HERE, 'kamailio-agent.js'), JSON.stringify(o)],
    join(OUT, `agent-${++agents}-${o.role}.log`),
    180_000,
  );

/** Kamailio in the network namespace, in the foreground, its log in the output directory. */
async function startKamailio(): Promise<{ stop: () => Promise<void>; log: () => string }> {
  const run = join(OUT, 'kamailio-run');
  mkdirSync(run, { recursive: true });
  const logFile = join(OUT, 'kamailio.log');
  const out = createWriteStream(logFile, { flags: 'a' });
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', NS_NET, 'kamailio', '-f', CFG, '-DD', '-E', '-Y', run, '-m', '64', '-M', '8', '-w', run],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (b: Buffer) => out.write(b));
  child.stderr!.on('data', (b: Buffer) => out.write(b));
  let exited = false;
  child.on('exit', () => (exited = true));
  const log = () => readFileSync(logFile, 'utf8');
  const end = Date.now() + 90_000;
  // Ready when its protected ports listen (ims_ipsec_pcscf adds them in mod_init).
  while (!/:6100\b/.test(sh(`ip netns exec ${NS_NET} ss -ulnH`))) {
    if (exited || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`kamailio did not start:\n${log().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    log,
    stop: async () => {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    },
  };
}

async function main(): Promise<void> {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  process.stdout.write(
    `${JSON.stringify({ boot: { guestUptimeS: uptime, kernel: sh('uname -r').trim(), kamailio: sh('kamailio -v | head -1').trim() } })}\n`,
  );
  sh(`ip netns add ${NS_NET} && ip netns add ${NS_UE}`);
  sh(`ip link add net0 netns ${NS_NET} type veth peer name ue0 netns ${NS_UE}`);
  for (const [ns, dev, last] of [
    [NS_NET, 'net0', '1'],
    [NS_UE, 'ue0', '2'],
  ] as const) {
    sh(`ip -n ${ns} link set lo up && ip -n ${ns} link set ${dev} up && ip -n ${ns} addr add 192.0.2.${last}/24 dev ${dev}`);
  }
  // One UE address per case (192.0.2.10 on): Kamailio keeps its state per UE address and port.
  sh(`printf 'addr add 192.0.2.%d/24 dev ue0\\n' $(seq 10 69) | ip -n ${NS_UE} -batch -`);
  // KAM_PCAP=1: what crossed the veth, for debugging (pcap in the output directory).
  const pcap = process.env.KAM_PCAP
    ? spawn('ip', ['netns', 'exec', NS_NET, 'tcpdump', '-i', 'net0', '-U', '--immediate-mode', '-w', join(OUT, 'net0.pcap')], {
        stdio: 'ignore',
      })
    : undefined;
  try {
    await kamailioScenarios({
      check,
      sh,
      startAgent,
      startKamailio,
      nsNet: NS_NET,
      nsUe: NS_UE,
      out: OUT,
      only: process.env.KAM_VM_ONLY?.split(','),
      cliJs: process.env.KAM_CLI_JS ?? join(HERE, '../../src/cli/main.js'),
    });
  } finally {
    pcap?.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 500));
    sh(`ip netns del ${NS_NET}; ip netns del ${NS_UE}; true`);
  }
  process.stdout.write(`${JSON.stringify({ done: true, failed })}\n`);
  // Whatever a failed check left running (a child's pipes) must not keep the VM up until its watchdog.
  process.exit(0);
}

await main();
