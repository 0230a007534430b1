// `imsec load`: an IMS AKA + IPsec load generator (issue 9 §1). Many UEs over one IPsec backend per
// local address, driven by src/load/engine.ts; a live status on stderr, the report on stdout
// (JSON with --json), per-interval CSV rows with --csv. `imsec load merge` combines the JSON
// reports of several machines. Exit 0, 1 when failures exceed --max-failures, 2 bad input.
import { lookup } from 'node:dns/promises';
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import { parseAlgPairList, type AlgPair, type UsableMod } from '../secagree/index.ts';
import { fromHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { LoadEngine } from '../load/engine.ts';
import { commonKeys, csvKeys, storeKeys, type KeySource } from '../load/keys.ts';
import { assertConfigured, parseLocal } from '../load/local-addrs.ts';
import { assertCapacity, openFileLimit } from '../load/capacity.ts';
import { subscriberRange } from '../load/pattern.ts';
import { buildReport, CSV_COLUMNS, csvLine, formatReport, mergeReports, type IntervalRow, type LoadReport } from '../load/report.ts';
import { computeOpc } from '../aka/index.ts';
import { BACKEND_HELP, openBackend, parseBackend } from './backend-choice.ts';
import { systemClock } from '../util/clock.ts';
import { EXIT_CHECK_FAILED } from './output.ts';
import { statsOnSignal } from './stats-signal.ts';
import { forcedGc } from '../util/forced-gc.ts';
import { optionsSchema, resolveConfig } from './config.ts';
import { parseHostPortArg } from './ue.ts';

interface LoadCliOptions {
  pcscf: string;
  pcscfEncapPort: string;
  impi: string;
  impu?: string;
  first: string;
  count: string;
  k?: string;
  op?: string;
  opc?: string;
  keysDb?: string;
  keysCsv?: string;
  rate: string;
  ramp: string;
  concurrency: string;
  duration: string;
  expires: string;
  refreshRetry: string;
  refreshRetries: string;
  messageRate: string;
  churn: string;
  deregister: boolean;
  mode: string;
  offer: string[];
  backend: string;
  local?: string;
  interval: string;
  json?: boolean;
  csv?: string;
  maxFailures: string;
  quiet?: boolean;
  t1?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function num(text: string, flag: string, lo: number, hi: number, integer = false): number {
  const n = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(n >= lo && n <= hi) || (integer && !Number.isInteger(n)))
    throw new InputError(`${flag}: must be ${integer ? 'an integer' : 'a number'} ${lo}..${hi}, got ${JSON.stringify(text)}`);
  return n;
}

function secretHex(hex: string, flag: string): Uint8Array {
  if (!/^(?:0x)?[0-9a-fA-F]{32}$/.test(hex)) throw new InputError(`${flag}: not 16 octets of hex (value not shown)`);
  return fromHex(hex, flag, 16);
}

function keySource(o: LoadCliOptions): KeySource {
  const given = [o.k !== undefined, o.keysDb !== undefined, o.keysCsv !== undefined].filter(Boolean).length;
  if (given !== 1)
    throw new InputError('give the keys one way: --k with --op/--opc (common to all UEs), --keys-db FILE or --keys-csv FILE');
  if (o.keysDb !== undefined) return storeKeys(o.keysDb);
  if (o.keysCsv !== undefined) return csvKeys(o.keysCsv);
  if ((o.op === undefined) === (o.opc === undefined)) throw new InputError('--k: give exactly one of --op and --opc with it');
  const k = secretHex(o.k!, '--k');
  return commonKeys({ k, opc: o.op !== undefined ? computeOpc(k, secretHex(o.op, '--op')) : secretHex(o.opc!, '--opc') });
}

function modesOf(s: string): UsableMod[] {
  switch (s.toLowerCase()) {
    case 'trans':
      return ['trans'];
    case 'udp-enc-tun':
      return ['UDP-enc-tun'];
    default:
      throw new InputError(`--mode: trans or udp-enc-tun, got ${JSON.stringify(s)}`);
  }
}

/** Open descriptors of this process (Linux), or undefined. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

function statusText(row: IntervalRow, phase: string): string {
  return (
    `${row.elapsed_s.toFixed(0).padStart(5)} s  ${phase.padEnd(6)} registered ${row.registered}  in flight ${row.in_flight}  ` +
    `attempts/s ${row.attempts_per_s}  ok ${row.successes} failed ${row.failures}  p50 ${row.p50_ms} ms p99 ${row.p99_ms} ms  msgs ${row.messages}  rss ${Math.round(row.rss_bytes / 1048576)} MB`
  );
}

async function runLoad(o: LoadCliOptions): Promise<void> {
  const range = subscriberRange({
    impi: o.impi,
    ...(o.impu !== undefined && { impu: o.impu }),
    first: num(o.first, '--first', 0, Number.MAX_SAFE_INTEGER, true),
    count: num(o.count, '--count', 1, 10_000_000, true),
  });
  const rate = num(o.rate, '--rate', 0.001, 1e6);
  const rampMs = num(o.ramp, '--ramp', 0, 86400) * 1000;
  const concurrency = num(o.concurrency, '--concurrency', 1, 1e6, true);
  const holdMs = num(o.duration, '--duration', 0, 30 * 86400) * 1000;
  const expires = num(o.expires, '--expires', 1, 0xffffffff, true);
  const refreshRetryMs = num(o.refreshRetry, '--refresh-retry', 0.001, 86400) * 1000;
  const refreshRetries = num(o.refreshRetries, '--refresh-retries', 0, 1000, true);
  const messageRate = num(o.messageRate, '--message-rate', 0, 1e6);
  const churnRate = num(o.churn, '--churn', 0, 1e6);
  const intervalMs = num(o.interval, '--interval', 0.1, 3600) * 1000;
  const maxFailures = num(o.maxFailures, '--max-failures', 0, Number.MAX_SAFE_INTEGER, true);
  // --no-deregister: commander's default is true, a --config file may leave the key out entirely.
  const deregister = o.deregister !== false;
  const modes = modesOf(o.mode);
  const kind = parseBackend(o.backend);
  const offers: AlgPair[] | undefined = o.offer.length ? o.offer.flatMap((s) => parseAlgPairList(s, '--offer')) : undefined;
  const pc = parseHostPortArg(o.pcscf, '--pcscf');
  const pcscfEncapPort = num(o.pcscfEncapPort, '--pcscf-encap-port', 1, 65535, true);
  const t1Ms = o.t1 !== undefined ? num(o.t1, '--t1', 1, 60000, true) : undefined;
  let pcscfIp = pc.host;
  if (isIP(pcscfIp) === 0) {
    try {
      pcscfIp = (await lookup(pc.host)).address;
    } catch {
      throw new InputError(`--pcscf: cannot resolve ${JSON.stringify(pc.host)}`);
    }
  }
  const localIps = o.local !== undefined ? parseLocal(o.local) : [isIP(pcscfIp) === 6 ? '::1' : '127.0.0.1'];
  if (isIP(localIps[0]!) !== isIP(pcscfIp))
    throw new InputError(`--local: the P-CSCF ${pcscfIp} is IPv${isIP(pcscfIp)}; give local addresses of that family`);
  assertCapacity({ count: range.count, locals: localIps.length, concurrency, backend: kind, limit: openFileLimit() });
  await assertConfigured(localIps);
  const keys = keySource(o);
  const csv: WriteStream | undefined = o.csv !== undefined ? createWriteStream(o.csv) : undefined;
  if (csv) {
    await new Promise<void>((resolve, reject) =>
      csv
        .once('open', () => resolve())
        .once('error', (e) => reject(new InputError(`--csv: cannot write ${o.csv}: ${(e as NodeJS.ErrnoException).code ?? e.message}`))),
    );
    csv.write(CSV_COLUMNS.join(',') + '\n');
  }

  const gc = forcedGc();
  gc?.();
  const rssBase = process.memoryUsage.rss();
  const heapBase = process.memoryUsage().heapUsed;
  const backends: IpsecBackend[] = [];
  const locals: { ip: string; backend: IpsecBackend }[] = [];
  try {
    for (const ip of localIps) {
      const backend = await openBackend(kind, { localIp: ip, encapPort: 0, clock: systemClock });
      backends.push(backend);
      locals.push({ ip, backend });
    }
    const startedAt = new Date();
    const cpu0 = process.cpuUsage();
    let rssMax = 0;
    const tty = process.stderr.isTTY === true && !o.quiet;
    const engine = new LoadEngine({
      range,
      keys,
      pcscf: { address: pcscfIp, port: pc.port },
      pcscfEncapPort,
      locals,
      modes,
      ...(offers && { offers }),
      rate,
      rampMs,
      concurrency,
      holdMs,
      expires,
      refreshRetryMs,
      refreshRetries,
      messageRate,
      churnRate,
      deregister,
      intervalMs,
      ...(t1Ms !== undefined && { t1Ms }),
      onInterval: (row) => {
        rssMax = Math.max(rssMax, row.rss_bytes);
        csv?.write(csvLine(row));
        if (o.quiet) return;
        if (tty) process.stderr.write(`\r${statusText(row, engine.phase)}\x1b[K`);
        else process.stderr.write(statusText(row, engine.phase) + '\n');
      },
    });
    let rssPerUe: number | undefined;
    let heapPerUe: number | undefined;
    let fds: number | undefined;
    engine.onAllRegistered = () => {
      gc?.();
      const n = engine.registered;
      if (n > 0) {
        rssPerUe = Math.max(0, process.memoryUsage.rss() - rssBase) / n;
        heapPerUe = Math.max(0, process.memoryUsage().heapUsed - heapBase) / n;
      }
      fds = openFds();
    };
    const unstats = statsOnSignal('load', () => ({
      registered: engine.registered,
      in_flight: engine.inFlight,
      phase: engine.phase,
      live_sa_sets: backends.reduce((n, b) => n + b.sets.filter((x) => x.live).length, 0),
      // Before the backends and the UEs: the bench takes RSS per registered UE from these, at a
      // moment it picks (after the burst's transactions ended, as for the P-CSCF).
      rss_base: rssBase,
      heap_base: heapBase,
    }));
    let signals = 0;
    const onSignal = (): void => {
      signals++;
      if (signals === 1) {
        process.stderr.write(`\nimsec load: stopping (de-registering${deregister ? '' : ' skipped'}); Ctrl-C again to skip it\n`);
        engine.stop();
      } else if (signals === 2) engine.abort();
      else process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await engine.run();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      unstats();
    }
    if (tty) process.stderr.write('\n');
    const cpu = process.cpuUsage(cpu0);
    const rssEnd = process.memoryUsage.rss();
    const config = {
      pcscf: `${pcscfIp}:${pc.port}`,
      impi: o.impi,
      impu: range.impu.source,
      first: range.first,
      count: range.count,
      rate,
      ramp_s: rampMs / 1000,
      concurrency,
      duration_s: holdMs / 1000,
      expires,
      refresh_retry_s: refreshRetryMs / 1000,
      refresh_retries: refreshRetries,
      message_rate: messageRate,
      churn: churnRate,
      deregister,
      mode: o.mode,
      backend: kind,
      locals: localIps.length,
    };
    const report = buildReport({
      stats: engine.stats,
      startedAt,
      endedAt: new Date(),
      config,
      ues: range.count,
      interrupted: engine.interrupted,
      saSetsLeft: engine.setsLeftAtEnd,
      process: {
        cpu_user_ms: cpu.user / 1000,
        cpu_system_ms: cpu.system / 1000,
        rss_max_bytes: Math.max(rssMax, rssEnd),
        rss_end_bytes: rssEnd,
        ...(rssPerUe !== undefined && { rss_per_registered_ue_bytes: Math.round(rssPerUe) }),
        ...(heapPerUe !== undefined && { heap_per_registered_ue_bytes: Math.round(heapPerUe) }),
        ...(fds !== undefined && { open_fds_registered: fds }),
      },
    });
    process.stdout.write(o.json ? JSON.stringify(report) + '\n' : formatReport(report));
    if (report.failures_total > maxFailures) {
      process.stderr.write(`imsec load: ${report.failures_total} failures > --max-failures ${maxFailures}\n`);
      process.exitCode = EXIT_CHECK_FAILED;
    }
  } finally {
    for (const b of backends) await b.close().catch(() => {});
    keys.close();
    if (csv) await new Promise<void>((r) => csv.end(() => r()));
  }
}

function readReport(file: string): LoadReport {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file}: not a JSON report: ${e instanceof Error ? e.message : String(e)}`);
  }
  const r = j as Partial<LoadReport>;
  if (r?.report !== 'imsec-load' || r.version !== 1 || typeof r.histograms !== 'object')
    throw new InputError(`${file}: not an imsec load --json report (version 1)`);
  return r as LoadReport;
}

const HELP = `
Scenario: register the UEs of the range at --rate per second (ramping up over --ramp seconds), at
most --concurrency procedures in flight; each registered UE refreshes before expiry (at half of
--expires, or 600 s before it above 1200 s); a refresh that fails while the registration is still
valid is tried again --refresh-retry seconds later, at most --refresh-retries times and only while
that is at least a second before the expiry (then the UE counts as refresh:retries_exhausted and is
left to expire); when every UE has been tried, hold --duration seconds
with --message-rate MESSAGEs per second (a random registered UE to another's IMPU: MO, and the MT
side answered by the target UE) and --churn de-register/re-register cycles per second; then
de-register everyone (--no-deregister skips that). Ctrl-C: stop, de-register, report; twice: report
without de-registering.

Subscribers: --impi/--impu patterns with one counter {n} or {n:WIDTH} (zero-padded), n = --first …
--first + --count - 1; --impu defaults to sip:<IMPI>. Keys: --k with --op/--opc for every UE,
--keys-db (the HSS store file of imsec core) or --keys-csv (lines impi,k,opc).
Addresses: --local takes a list (a,b) or a CIDR (127.0.1.0/28); UEs are spread round-robin, one IPsec
backend per address; each address must be configured on the host. Userspace backend: at most 5000
UEs per address (their protected ports must differ on one address), and no file descriptor per
registered UE (one ESP-in-UDP socket per address, an unprotected socket only while an initial
registration runs): 100k UEs need 20 addresses (any of 127.0.0.0/8 on Linux) and ~300 descriptors.
--backend xfrm: about 3 descriptors per UE (kernel sockets on the protected ports).
Modes: udp-enc-tun (needs nothing) or trans (userspace: raw ESP sockets, CAP_NET_RAW).

Output: a status line on stderr (redrawn on a terminal, one line per --interval otherwise), the
report on stdout (--json: one JSON object, mergeable with "imsec load merge"); --csv FILE writes one
row per interval. Failures are counted as <procedure>:<reason>, e.g. register:timeout,
register:no_security_server (401 without Security-Server), register:status_403, register:status_494,
register:mac_failure, register:transport_error, refresh:…, message:status_408, deregister:….
Each failed try counts; the outcomes refresh_retries and refresh_recovered say how many refreshes
were tried again and how many of those kept the registration.
Exit 1 when failures exceed --max-failures (default 0).

Example (our core and P-CSCF on loopback, 1000 subscribers provisioned with imsec subscriber add):
  imsec load --pcscf 127.0.0.1:5060 --pcscf-encap-port 4500 --impi '00101{n:10}@ims.example' \\
    --count 1000 --k 465b5ce8b199b49faa5f0a2ee238a6bc --opc cd63cb71954a9f4e48a5994e37a02baf \\
    --rate 200 --concurrency 100 --duration 30 --expires 60 --message-rate 50 --mode udp-enc-tun
`;

export function registerLoad(program: Command): void {
  const load = program
    .command('load')
    .description(
      'IMS AKA + IPsec load generator: many UEs register, refresh, send MESSAGEs, churn and de-register; report with latency percentiles',
    )
    .option('--pcscf <host:port>', "the P-CSCF's unprotected address (port default 5060)")
    .option('--pcscf-encap-port <n>', "the P-CSCF's ESP-in-UDP port (udp-enc-tun)", '4500')
    .option('--impi <pattern>', 'private identity pattern, e.g. 00101{n:10}@ims.example')
    .option('--impu <pattern>', 'public identity pattern (default sip:<IMPI pattern>)')
    .option('--first <n>', 'first counter value', '1')
    .option('--count <n>', 'number of UEs', '1')
    .option('--k <hex>', 'K common to every UE (with --op or --opc)')
    .option('--op <hex>', 'OP common to every UE')
    .option('--opc <hex>', 'OPc common to every UE')
    .option('--keys-db <file>', "per-UE keys from an HSS store file (imsec subscriber / core's --db)")
    .option('--keys-csv <file>', 'per-UE keys from a CSV: impi,k,opc (hex)')
    .option('--rate <r>', 'initial registrations started per second', '100')
    .option('--ramp <s>', 'seconds to ramp the rate up from 0', '0')
    .option('--concurrency <n>', 'procedures in flight at most', '200')
    .option('--duration <s>', 'hold time after the registration phase, in seconds', '0')
    .option('--expires <s>', 'requested registration expiry (refresh at half)', '3600')
    .option('--refresh-retry <s>', 'seconds after a failed refresh to try again (before the expiry)', '5')
    .option('--refresh-retries <n>', 'retries of one failed refresh at most', '3')
    .option('--message-rate <r>', 'MESSAGEs per second during the hold (MO; MT answered)', '0')
    .option('--churn <r>', 'de-register/re-register cycles per second during the hold', '0')
    .option('--no-deregister', 'leave the UEs registered at the end (their SAs are still removed locally)')
    .option('--mode <m>', 'trans or udp-enc-tun (trans needs CAP_NET_RAW with the userspace backend)', 'udp-enc-tun')
    .option('--offer <alg/ealg>', 'algorithm pair to offer (repeat; default the usual five)', collect, [])
    .option('--backend <b>', BACKEND_HELP, 'userspace')
    .option('--local <list|cidr>', 'local addresses to spread the UEs over (default 127.0.0.1 or ::1)')
    .option('--interval <s>', 'status / CSV interval in seconds', '1')
    .option('--csv <file>', 'write one CSV row per interval (like SIPp -trace_stat)')
    .option('--json', 'print the report as one JSON object')
    .option('--max-failures <n>', 'exit 1 when more failures than this', '0')
    .option('--quiet', 'no status line')
    .option('--t1 <ms>', 'SIP T1 (Timer F = 64·T1 is the per-exchange timeout), default 500')
    .option('--config <file>', 'YAML file of settings (keys are the long flag names: message-rate: 50); flags override it')
    .option('--print-config', 'print the effective configuration (K, OP, OPc redacted) and exit')
    .addHelpText('after', HELP)
    .action(async (_o: unknown, self: Command) => {
      const o = resolveConfig(self, optionsSchema(self), { secrets: ['k', 'op', 'opc'] }) as LoadCliOptions | undefined;
      if (o === undefined) return;
      if (o.pcscf === undefined) throw new InputError('--pcscf: required (HOST:PORT of the P-CSCF)');
      if (o.impi === undefined) throw new InputError('--impi: required (a pattern such as 00101{n:10}@ims.example)');
      await runLoad(o);
    });

  load
    .command('merge')
    .description('merge the --json reports of several load machines (disjoint ranges) into one')
    .argument('<reports...>', 'report files written by imsec load --json')
    .option('--json', 'print the merged report as JSON')
    .action((files: string[], o: { json?: boolean }) => {
      const merged = mergeReports(files.map(readReport));
      process.stdout.write(o.json ? JSON.stringify(merged) + '\n' : formatReport(merged));
    });
}
