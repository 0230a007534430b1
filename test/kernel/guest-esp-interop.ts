// Guest orchestrator of the kernel-ESP interop test (runs inside the VM, as root, in the root netns):
// netns "k" (Linux ESP, SAs and policies from our xfrmCommands export) and "u" (our UserspaceBackend)
// on a veth pair; every mode × family × pair exchanges SIP both ways over all four SAs, then each side
// gets a replayed and a forged packet of the other's.
// Usage: node guest-esp-interop.js OUT_DIR   → OUT_DIR/result.json (+ capture.pcap, esp_sa, logs)
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { espSaLines, xfrmCommands } from '../../src/ipsec/key-export.ts';
import { expandKeys } from '../../src/ipsec/keys.ts';
import { createSaSet, type SaSet } from '../../src/ipsec/sa-set.ts';
import type { SaName } from '../../src/ipsec/sa.ts';
import { toHex } from '../../src/util/bytes.ts';
import { RpcChild } from './guest-rpc.ts';
import {
  ADDR,
  type AttackRecord,
  type Batch,
  type BatchResult,
  FORGED_SEQ_DELTA,
  type GuestResult,
  type KernelStateSnapshot,
  MESSAGES_PER_SA,
  NETNS,
  type OurSa,
  type ReceivedMessage,
  SA_NAMES,
  type SentMessage,
  batchSpecs,
  batches,
  senderOf,
  sipMessage,
} from './interop-grid.ts';
import { parseXfrmStat, parseXfrmStates, statDelta } from './xfrm-parse.ts';

const OUT = process.argv[2] ?? '';
if (!OUT) {
  console.error('usage: guest-esp-interop OUT_DIR');
  process.exit(2);
}
const K = NETNS.kernel;
const U = NETNS.userspace;
const log = (msg: string) => process.stderr.write(`[guest ${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);
const T0 = Date.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(script: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout, err: r.stderr.trim() || (r.error?.message ?? '') };
}
function ipBatch(lines: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', ['-n', K, '-batch', '-'], { input: `${lines.join('\n')}\n`, encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout, err: r.stderr.trim() || (r.error?.message ?? '') };
}
function mustSh(script: string): string {
  const r = sh(script);
  if (!r.ok) throw new Error(`${script.split('\n')[0]}: ${r.err}`);
  return r.out;
}

// ------------------------------------------------------------------ the two namespaces

function setupNetns(): void {
  // Fixed MACs and permanent neighbours: no ARP/ND round trip before the first ESP packet;
  // nodad: the IPv6 addresses are usable at once (a tentative address cannot be bound).
  mustSh(`
    ip netns add ${K}
    ip netns add ${U}
    ip link add vk address 02:00:00:00:00:01 netns ${K} type veth peer name vu address 02:00:00:00:00:02 netns ${U}
    ip -n ${K} link set lo up; ip -n ${U} link set lo up
    ip -n ${K} addr add ${ADDR.IPv4.kernel}/24 dev vk; ip -n ${U} addr add ${ADDR.IPv4.userspace}/24 dev vu
    ip -n ${K} addr add ${ADDR.IPv6.kernel}/64 dev vk nodad; ip -n ${U} addr add ${ADDR.IPv6.userspace}/64 dev vu nodad
    ip -n ${K} link set vk up; ip -n ${U} link set vu up
    ip -n ${K} neigh replace ${ADDR.IPv4.userspace} lladdr 02:00:00:00:00:02 dev vk nud permanent
    ip -n ${U} neigh replace ${ADDR.IPv4.kernel} lladdr 02:00:00:00:00:01 dev vu nud permanent
    ip -n ${K} neigh replace ${ADDR.IPv6.userspace} lladdr 02:00:00:00:00:02 dev vk nud permanent
    ip -n ${U} neigh replace ${ADDR.IPv6.kernel} lladdr 02:00:00:00:00:01 dev vu nud permanent
  `);
}

function teardownNetns(): void {
  // Deleting a namespace removes its end of the veth, its SAs and policies.
  sh(`for ns in ${K} ${U} imsec-warm; do ip netns del $ns 2>/dev/null || true; done`);
}

/**
 * The first SA of each algorithm makes the kernel load esp4/esp6, xfrm_user and the crypto modules
 * and instantiate the templates (and the DRBG for IV generation): ~10-20 s under TCG. Doing it in
 * a scratch netns while the helper processes start overlaps the two. Failure here is not fatal:
 * the batches report what the kernel refuses.
 */
function warmUp(): Promise<{ ok: boolean; err: string }> {
  const ns = 'imsec-warm';
  const k = '0x000102030405060708090a0b0c0d0e0f';
  const states = [
    `auth-trunc 'hmac(md5)' ${k} 96 enc 'cbc(des3_ede)' ${k}0001020304050607`,
    `auth-trunc 'hmac(sha1)' ${k}00000000 96 enc 'cbc(aes)' ${k}`,
    `auth-trunc 'hmac(sha1)' ${k}00000000 96 enc 'ecb(cipher_null)' ''`,
    `aead 'rfc4106(gcm(aes))' ${k}01020304 128`,
    `aead 'rfc4543(gcm(aes))' ${k}01020304 128`,
  ];
  const lines = states.flatMap((alg, i) => [
    `xfrm state add src 192.0.2.9 dst 192.0.2.8 proto esp spi ${0x100 + i} mode transport ${alg}`,
    `xfrm state add src 2001:db8::9 dst 2001:db8::8 proto esp spi ${0x200 + i} mode tunnel ${alg} encap espinudp 4500 4500 ::`,
  ]);
  return new Promise((resolve) => {
    const c = spawn('bash', ['-c', `ip netns add ${ns} && ip -n ${ns} -batch - ; rc=$?; ip netns del ${ns}; exit $rc`], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
    c.on('exit', (code) => resolve({ ok: code === 0, err: err.trim() }));
    c.stdin!.end(`${lines.join('\n')}\n`);
  });
}

// ------------------------------------------------------------------ helper processes

const SELF = fileURLToPath(import.meta.url);
/** Runs a sibling helper the way we run (compiled .js, or .ts sources under tsx). */
function helperArgv(ns: string, name: string): string[] {
  const file = join(SELF, '..', `${name}${extname(SELF)}`);
  // Our own node flags (--import tsx for .ts, --enable-source-maps for the compiled .js).
  return ['ip', 'netns', 'exec', ns, process.execPath, ...process.execArgv, file];
}

/**
 * The kernel only decapsulates ESP-in-UDP that arrives on a socket with UDP_ENCAP_ESPINUDP; node
 * cannot set that option, so a python3 process holds port 4500 in netns k (both families).
 * /usr/bin/python3, not the pyenv shim on PATH (8 s per start under TCG).
 */
const ENCAP_HOLDER = `
import socket, sys
socks = []
for fam, addr in ((socket.AF_INET, ${JSON.stringify(ADDR.IPv4.kernel)}), (socket.AF_INET6, ${JSON.stringify(ADDR.IPv6.kernel)})):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, 4500))
    s.setsockopt(socket.IPPROTO_UDP, 100, 2)  # UDP_ENCAP, UDP_ENCAP_ESPINUDP
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()
`;

function startWaiting(
  argv: string[],
  readyRe: RegExp,
  stream: 'stdout' | 'stderr',
  what: string,
  timeoutMs = 30_000,
): Promise<ChildProcess> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after ${timeoutMs} ms: ${seen}`)), timeoutMs);
    const onData = (c: Buffer) => {
      seen += c.toString('utf8');
      if (readyRe.test(seen)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child[stream]!.on('data', onData);
    child[stream === 'stdout' ? 'stderr' : 'stdout']!.on('data', (c: Buffer) => (seen += c.toString('utf8')));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${seen}`));
    });
  });
}

async function stopChild(c: ChildProcess | undefined, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill(signal);
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

// ------------------------------------------------------------------ kernel views

function kernelStates(): KernelStateSnapshot {
  const text = mustSh(`ip -n ${K} -s xfrm state`);
  const out: KernelStateSnapshot = {};
  for (const s of parseXfrmStates(text)) out[`0x${s.spi.toString(16)}`] = s;
  return out;
}
const xfrmStat = () => parseXfrmStat(mustSh(`ip netns exec ${K} cat /proc/net/xfrm_stat`));

// ------------------------------------------------------------------ one batch

interface Helpers {
  agent: RpcChild;
  kapp: RpcChild;
}

async function runBatch(b: Batch, h: Helpers, espSa: string[]): Promise<BatchResult> {
  const t0 = Date.now();
  const specs = batchSpecs(b);
  const kAddr = ADDR[b.family].kernel;
  const uAddr = ADDR[b.family].userspace;
  const res: BatchResult = {
    batch: b,
    sets: specs.map((spec) => ({ spec, sent: [], attacks: [] })),
    kernelReceived: [],
    userspaceReceived: [],
    lateKernelReceived: [],
    lateUserspaceReceived: [],
    kernelStates: { exchanged: {}, attacked: {} },
    ours: { exchanged: {}, attacked: {} },
    backendCounters: {},
    xfrmStat: { exchange: {}, attacks: {} },
    ms: 0,
    errors: [],
  };
  const byId = new Map(res.sets.map((s) => [s.spec.id, s]));

  // 1. Kernel side: the set as the kernel's role sees it, installed with our own `ip xfrm` export.
  const kernelSets = new Map<string, SaSet>();
  const keys = new Map<string, { ik: Uint8Array; ck: Uint8Array }>();
  const script: string[] = [];
  for (const spec of specs) {
    const k = { ik: randomBytes(16), ck: randomBytes(16) };
    keys.set(spec.id, k);
    const set = createSaSet({
      id: spec.id,
      role: spec.kernelRole,
      ue: spec.ue,
      pcscf: spec.pcscf,
      alg: spec.alg,
      ealg: spec.ealg,
      mode: spec.mode,
      replayWindow: spec.replayWindow,
      keys: expandKeys(k.ik, k.ck, spec.alg, spec.ealg),
    });
    const cmds = xfrmCommands(set, { netns: K, reqidBase: spec.reqidBase });
    script.push(`# ${spec.id} (kernel = ${spec.kernelRole})`, ...cmds);
    // One `ip -batch` per set (an exec costs ~0.1-0.2 s under TCG; 64 per batch added up): the
    // exported lines minus their "ip -n NS " prefix, with the same quoting ('hmac(sha1)', '').
    const prefix = `ip -n ${K} `;
    const bad = cmds.find((c) => !c.startsWith(prefix));
    const r = bad
      ? { ok: false, out: '', err: `xfrmCommands line without the "${prefix}" prefix: ${bad.slice(0, 60)}` }
      : ipBatch(cmds.map((c) => c.slice(prefix.length)));
    if (!r.ok) {
      byId.get(spec.id)!.installError = r.err;
      log(`${spec.id}: the kernel refused our xfrm export: ${r.err}`);
      continue;
    }
    kernelSets.set(spec.id, set);
    espSa.push(`# ${spec.id}`, ...espSaLines(set).slice(1));
  }
  writeFileSync(join(OUT, `xfrm-${b.name}.sh`), `${script.join('\n')}\n`);
  log(`${b.name}: kernel SAs installed`);

  // 2. Userspace side.
  const setupErrors = await h.agent.call<Record<string, string>>('setup', {
    localIp: uAddr,
    sets: specs
      .filter((s) => kernelSets.has(s.id))
      .map((spec) => ({ spec, ik: toHex(keys.get(spec.id)!.ik), ck: toHex(keys.get(spec.id)!.ck) })),
  });
  for (const [id, err] of Object.entries(setupErrors)) {
    byId.get(id)!.userspaceError = err;
    kernelSets.delete(id);
  }
  const active = specs.filter((s) => kernelSets.has(s.id));
  const kernelPorts = active.flatMap((s) => {
    const p = s.kernelRole === 'ue' ? s.ue : s.pcscf;
    return [
      { address: kAddr, port: p.portC },
      { address: kAddr, port: p.portS },
    ];
  });
  await h.kapp.call('bind', { binds: kernelPorts });
  log(`${b.name}: userspace SAs installed, kernel app bound`);

  // 3. The exchange: round m sends message m on every SA of every set, both sides at once.
  const stat0 = xfrmStat();
  for (let m = 0; m < MESSAGES_PER_SA; m++) {
    const uItems: { setId: string; sa: SaName; text: string }[] = [];
    const uSent: SentMessage[] = [];
    const kItems: { from: SentMessage['from']; to: SentMessage['to']; text: string }[] = [];
    const kSent: SentMessage[] = [];
    for (const spec of active) {
      const set = kernelSets.get(spec.id)!;
      for (const sa of SA_NAMES) {
        const p = set.sas[sa].params;
        const msg: SentMessage = {
          sa,
          sender: senderOf(spec, sa),
          text: sipMessage(spec, sa, m, p.src, p.srcPort),
          from: { address: p.src, port: p.srcPort },
          to: { address: p.dst, port: p.dstPort },
        };
        byId.get(spec.id)!.sent.push(msg);
        if (msg.sender === 'userspace') {
          uItems.push({ setId: spec.id, sa, text: msg.text });
          uSent.push(msg);
        } else {
          kItems.push({ from: msg.from, to: msg.to, text: msg.text });
          kSent.push(msg);
        }
      }
    }
    const [uErr, kErr] = await Promise.all([
      h.agent.call<(string | null)[]>('send', { items: uItems }),
      h.kapp.call<(string | null)[]>('send', { items: kItems }),
    ]);
    uErr.forEach((e, i) => e && (uSent[i]!.error = e));
    kErr.forEach((e, i) => e && (kSent[i]!.error = e));
  }
  const allSent = res.sets.flatMap((s) => s.sent).filter((s) => !s.error);
  const wantK = allSent.filter((s) => s.sender === 'userspace').length;
  const wantU = allSent.filter((s) => s.sender === 'kernel').length;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
    res.kernelReceived.push(...(await h.kapp.call<ReceivedMessage[]>('received')));
    res.userspaceReceived.push(...(await h.agent.call<ReceivedMessage[]>('received')));
    if (res.kernelReceived.length >= wantK && res.userspaceReceived.length >= wantU) break;
    await sleep(100);
  }
  res.kernelStates.exchanged = kernelStates();
  res.ours.exchanged = (await h.agent.call<{ sets: Record<string, OurSa[]> }>('stats')).sets;
  const stat1 = xfrmStat();
  res.xfrmStat.exchange = statDelta(stat0, stat1);
  log(
    `${b.name}: ${active.length}/${specs.length} sets, sent ${wantK} to the kernel (${res.kernelReceived.length} arrived), ${wantU} to us (${res.userspaceReceived.length} arrived)`,
  );

  // 4. Attacks, per set: one of our packets replayed to the kernel and one forged (sequence number
  // moved ahead, old ICV); one of the kernel's packets replayed to us and one forged. Each on its
  // own SA, rotating with the set index so that every SA name is attacked somewhere.
  const want = { kernelReplay: 0, kernelForged: 0, ourReplay: 0, ourForged: 0 };
  for (const [i, spec] of active.entries()) {
    const set = kernelSets.get(spec.id)!;
    const r = byId.get(spec.id)!;
    const ours = SA_NAMES.filter((sa) => senderOf(spec, sa) === 'userspace');
    const theirs = SA_NAMES.filter((sa) => senderOf(spec, sa) === 'kernel');
    for (const kind of ['replay', 'forged'] as const) {
      const seqDelta = kind === 'forged' ? FORGED_SEQ_DELTA : 0;
      const pick = kind === 'replay' ? i : i + 1;
      const ownSa = ours[pick % ours.length]!;
      const toKernel: AttackRecord = { kind, to: 'kernel', sa: ownSa, spi: set.sas[ownSa].spi };
      try {
        await h.agent.call('resendOwn', { setId: spec.id, sa: ownSa, seqDelta });
        want[kind === 'replay' ? 'kernelReplay' : 'kernelForged']++;
      } catch (e) {
        toKernel.error = (e as Error).message;
      }
      const kSa = theirs[pick % theirs.length]!;
      const toUs: AttackRecord = { kind, to: 'userspace', sa: kSa, spi: set.sas[kSa].spi };
      try {
        const esp = Buffer.from(await h.agent.call<string>('lastInbound', { spi: set.sas[kSa].spi }), 'base64');
        if (seqDelta) esp.writeUInt32BE(esp.readUInt32BE(4) + seqDelta, 4);
        await h.kapp.call('inject', { src: kAddr, dst: uAddr, mode: spec.mode, esp: esp.toString('base64'), encapPort: 4500 });
        want[kind === 'replay' ? 'ourReplay' : 'ourForged']++;
      } catch (e) {
        toUs.error = (e as Error).message;
      }
      r.attacks.push(toKernel, toUs);
    }
  }
  log(`${b.name}: replayed and forged packets sent`);
  // Wait until both sides counted every one of them (or give up after 5 s; the host test says what is missing).
  for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
    const ks = Object.values(kernelStates());
    const st = await h.agent.call<{ sets: Record<string, OurSa[]> }>('stats');
    const us = Object.values(st.sets).flat();
    const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0);
    if (
      sum(ks, (s) => s.replay) >= want.kernelReplay &&
      sum(ks, (s) => s.failed) >= want.kernelForged &&
      sum(us, (s) => s.drops['replay'] ?? 0) >= want.ourReplay &&
      sum(us, (s) => s.drops['icv'] ?? 0) >= want.ourForged
    )
      break;
    await sleep(100);
  }
  res.kernelStates.attacked = kernelStates();
  const st = await h.agent.call<{ sets: Record<string, OurSa[]>; counters: Record<string, number> }>('stats');
  res.ours.attacked = st.sets;
  res.backendCounters = st.counters;
  res.xfrmStat.attacks = statDelta(stat1, xfrmStat());
  // Anything delivered after the exchange would be an attack that got through.
  await sleep(200);
  res.lateKernelReceived = await h.kapp.call<ReceivedMessage[]>('received');
  res.lateUserspaceReceived = await h.agent.call<ReceivedMessage[]>('received');
  writeFileSync(join(OUT, `kernel-states-${b.name}.txt`), mustSh(`ip -n ${K} -s xfrm state; ip -n ${K} xfrm policy`));

  // 5. Clean slate for the next batch (other ports and SPIs anyway).
  await h.agent.call('teardown');
  await h.kapp.call('closeAll');
  mustSh(`ip -n ${K} xfrm state flush; ip -n ${K} xfrm policy flush`);
  res.ms = Date.now() - t0;
  log(`${b.name}: done in ${(res.ms / 1000).toFixed(1)} s`);
  return res;
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const result: GuestResult = { kernel: release(), batches: [], errors: [], timings: {} };
  const espSa: string[] = ['# Wireshark esp_sa for capture.pcap (test keys). Written by guest-esp-interop.'];
  let agent: RpcChild | undefined;
  let kapp: RpcChild | undefined;
  let holder: ChildProcess | undefined;
  let tcpdump: ChildProcess | undefined;
  let tcpdumpLog = '';
  try {
    teardownNetns();
    setupNetns();
    result.timings['netns'] = Date.now() - T0;
    const warm = warmUp();
    [agent, kapp, holder, tcpdump] = await Promise.all([
      RpcChild.start('userspace-agent', helperArgv(U, 'guest-userspace-agent'), join(OUT, 'userspace-agent.log')),
      RpcChild.start('kernel-app', helperArgv(K, 'guest-kernel-app'), join(OUT, 'kernel-app.log')),
      startWaiting(['ip', 'netns', 'exec', K, '/usr/bin/python3', '-c', ENCAP_HOLDER], /ready/, 'stdout', 'UDP_ENCAP holder'),
      // The wire, for people (and tshark) to look at: every ESP and ESP-in-UDP packet, both ways.
      // -B: a 16 MiB ring, or bursts are lost under TCG; -Z root: it may write into the share.
      startWaiting(
        [
          'ip',
          'netns',
          'exec',
          K,
          'tcpdump',
          '-i',
          'vk',
          '-n',
          '-Z',
          'root',
          '-B',
          '16384',
          '--immediate-mode',
          '-U',
          '-w',
          join(OUT, 'capture.pcap'),
          'ip proto 50 or ip6 proto 50 or udp port 4500',
        ],
        /listening on/,
        'stderr',
        'tcpdump',
      ),
    ]);
    tcpdump.stderr!.on('data', (c: Buffer) => (tcpdumpLog += c.toString('utf8')));
    result.timings['helpers'] = Date.now() - T0;
    log('helpers ready');
    const w = await warm;
    log(`crypto warm-up ${w.ok ? 'done' : `failed (not fatal): ${w.err}`}`);
    result.timings['warm-up'] = Date.now() - T0;
    for (const b of batches()) {
      try {
        result.batches.push(await runBatch(b, { agent, kapp }, espSa));
      } catch (e) {
        result.errors.push(`${b.name}: ${(e as Error).stack ?? e}`);
        log(`${b.name} failed: ${(e as Error).stack ?? e}`);
        sh(`ip -n ${K} xfrm state flush; ip -n ${K} xfrm policy flush`);
        await agent.call('teardown').catch(() => {});
        await kapp.call('closeAll').catch(() => {});
      }
    }
  } catch (e) {
    result.errors.push(`setup: ${(e as Error).stack ?? e}`);
    log(`setup failed: ${(e as Error).stack ?? e}`);
  } finally {
    await stopChild(tcpdump, 'SIGINT');
    // "N packets dropped by kernel": the host test compares the capture with what was sent.
    writeFileSync(join(OUT, 'tcpdump.log'), tcpdumpLog);
    result.captureDrops = Number(/(\d+) packets? dropped by kernel/.exec(tcpdumpLog)?.[1] ?? NaN);
    await Promise.all([agent?.stop(), kapp?.stop(), stopChild(holder, 'SIGTERM')]);
    teardownNetns();
    result.timings['total'] = Date.now() - T0;
    writeFileSync(join(OUT, 'esp_sa'), `${espSa.join('\n')}\n`);
    writeFileSync(join(OUT, 'result.json'), JSON.stringify(result, null, 1));
  }
  const sets = result.batches.reduce((n, b) => n + b.sets.length, 0);
  console.log(
    `guest-esp-interop: ${result.batches.length} batches, ${sets} sets, ${result.errors.length} errors, ${(result.timings['total']! / 1000).toFixed(1)} s`,
  );
  return result.errors.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
