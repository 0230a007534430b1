// `imsec core`: the embedded S-CSCF + HSS (scscf/) on one UDP socket until SIGINT/SIGTERM, printing
// one line per registrar/routing event — identities, codes and reasons, never keys. `--json-events`
// prints each line as a JSON object (snake_case keys, output.ts contract).
import { guardProcess } from './serve-guard.ts';
import type { Command } from 'commander';
import { z } from 'zod';
import { statsOnSignal } from './stats-signal.ts';
import type { ScscfEvent } from '../scscf/events.ts';
import { Hss } from '../scscf/hss.ts';
import { Scscf } from '../scscf/scscf.ts';
import { ImsecError, InputError } from '../util/errors.ts';
import { hostArg } from './identity-args.ts';
import { addConfigOptions, boolField, checkedString, resolveConfig, secondsField } from './config.ts';
import { openHssDb } from './hss-db.ts';
import { CountingHss, registerCoreMetrics } from './core-metrics.ts';
import { createLogger, logLevelField, type LogLevel } from './log.ts';
import { newRegistry, parseMetricsListen, startMetricsServer, type MetricsServer } from './metrics.ts';
import { SipMeter } from './sip-meter.ts';
import { parseHostPortArg } from './parse-args.ts';

const DEFAULT_DB = './imsec-hss.sqlite';

export interface CoreRunOptions {
  /** ADDR:PORT, [v6]:PORT. */
  readonly listen: string;
  readonly domain: string;
  readonly db: string;
  readonly jsonEvents?: boolean;
  /** Seconds (24.229 Table 7.8.1: 240). */
  readonly regAwaitAuth?: number;
  readonly challengeReRegister?: boolean;
  readonly defaultExpires?: number;
  readonly maxExpires?: number;
  readonly advertise?: string;
  /** ADDR:PORT of the /metrics, /healthz, /readyz listener. */
  readonly metrics?: string;
  readonly logLevel?: LogLevel;
  /** SQN durability of the store: 'full' (fsync per SQN, default) or 'normal' (survives a process crash, not a power loss). */
  readonly hssSync?: 'full' | 'normal';
}

export interface CoreIo {
  /** Aborting stops the core (SIGINT/SIGTERM in the CLI). */
  readonly signal: AbortSignal;
  /** One output line, without the newline. */
  readonly out: (line: string) => void;
  /** Called once the core listens, with the metrics listener's address when `metrics` is set. */
  readonly onReady?: (info: { metrics?: { address: string; port: number } }) => void;
}

/** `127.0.0.1:6060`, `[::1]:6060` → address and port (0 allowed: ephemeral). */
export function parseListen(s: string): { address: string; port: number } {
  return parseHostPortArg(s, '--listen');
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** One line for an event: `TIME TYPE key=value …`, or a JSON object with `t` and `event`. */
export function formatEvent(
  e: ScscfEvent | { readonly type: string; readonly [k: string]: unknown },
  json: boolean,
  now = new Date(),
): string {
  const fields = Object.entries(e)
    .filter(([k, v]) => k !== 'type' && v !== undefined)
    .map(([k, v]) => [snake(k), v] as const);
  if (json) return JSON.stringify({ t: now.toISOString(), event: e.type, ...Object.fromEntries(fields) });
  const text = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));
  return [now.toISOString(), e.type, ...fields.map(([k, v]) => `${k}=${text(v)}`)].join(' ');
}

const snakeFields = (e: object) =>
  Object.fromEntries(
    Object.entries(e)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [snake(k), v]),
  );

/** Runs the core until `io.signal` aborts. Throws InputError for a missing store or a port that will not bind. */
export async function runCore(o: CoreRunOptions, io: CoreIo): Promise<void> {
  const { address, port } = parseListen(o.listen);
  if (!o.domain) throw new InputError('--domain: required');
  if (o.advertise !== undefined) hostArg(o.advertise, '--advertise');
  if (o.metrics !== undefined) parseMetricsListen(o.metrics);
  // JSON lines (snake_case fields) with --json-events or when stdout is not a terminal; the event line format on one.
  const log = createLogger({
    level: o.logLevel ?? 'info',
    ...(o.jsonEvents === true && { json: true }),
    write: io.out,
    pretty: (rec) => {
      const { level: _l, time, event, msg: _m, ...rest } = rec;
      return formatEvent({ type: String(event), ...rest }, false, new Date(String(time)));
    },
  });
  // The record is built only when the level prints it: per-registration events cost nothing when off.
  const infoOn = log.isLevelEnabled('info');
  const print = (e: Parameters<typeof formatEvent>[0]) =>
    void (infoOn && log.info({ event: e.type, ...snakeFields({ ...e, type: undefined }) }));
  const store = openHssDb(o.db, true, ' (create it with imsec subscriber add)', { ...(o.hssSync && { synchronous: o.hssSync }) });
  // Metrics only when served: the SIP meter sees every message, a cost for nothing when nobody scrapes it.
  const served = o.metrics !== undefined;
  const registry = newRegistry('core');
  const sip = served ? new SipMeter(registry, 'imsec_core') : undefined;
  // One SQN commit (one fsync with --hss-sync full) per event-loop turn for all the vectors it handed out.
  const hssOpts = { groupCommits: true };
  const counting = served ? new CountingHss(store, hssOpts) : undefined;
  const hss = counting ?? new Hss(store, hssOpts);
  let scscf: Scscf | undefined;
  const meter = counting && registerCoreMetrics(registry, counting, () => scscf!.counters);
  let metrics: MetricsServer | undefined;
  let ready = false;
  try {
    scscf = await Scscf.start({
      address,
      port,
      domain: o.domain,
      hss,
      ...(sip && { trace: sip.tracer() }),
      onEvent: (e) => {
        meter?.(e);
        print(e);
      },
      ...(o.regAwaitAuth !== undefined && { regAwaitAuthMs: o.regAwaitAuth * 1000 }),
      ...(o.challengeReRegister !== undefined && { challengeReRegister: o.challengeReRegister }),
      ...(o.defaultExpires !== undefined && { defaultExpires: o.defaultExpires }),
      ...(o.maxExpires !== undefined && { maxExpires: o.maxExpires }),
      ...(o.advertise !== undefined && { advertise: o.advertise }),
    });
  } catch (err) {
    store.close();
    if (err instanceof ImsecError) throw err;
    throw new InputError(`--listen: cannot bind ${o.listen}: ${err instanceof Error ? err.message : String(err)}`);
  }
  // SIGUSR2: one stats line on stderr after a forced GC (npm run bench:load asks for it).
  const unstats = statsOnSignal('core', () => ({ bindings: scscf.bindings.size }));
  try {
    if (o.metrics !== undefined)
      metrics = await startMetricsServer({ listen: o.metrics, registry, ready: () => ready && !io.signal.aborted });
    print({
      type: 'listening',
      address: scscf.local.address,
      port: scscf.local.port,
      domain: o.domain,
      serviceRoute: scscf.serviceRoute,
      subscribers: store.count(),
      ...(metrics && { metrics: `${metrics.address.includes(':') ? `[${metrics.address}]` : metrics.address}:${metrics.port}` }),
    });
    ready = true;
    io.onReady?.({ ...(metrics && { metrics: { address: metrics.address, port: metrics.port } }) });
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      else io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    unstats();
    ready = false;
    await scscf.stop();
    store.close();
    await metrics?.close();
  }
  print({ type: 'stopped', ...scscf.counters });
}

/** The settings of `imsec core` (flags and --config file keys), with their defaults. */
export const CoreConfigSchema = z.strictObject({
  listen: checkedString(parseListen, 'ADDR:PORT ([IPv6]:PORT)').default('127.0.0.1:6060'),
  domain: z
    .string({ error: (i) => (i.input === undefined ? 'required: the home domain' : 'expected the home domain (a string)') })
    .min(1, 'expected the home domain'),
  db: z.string({ error: 'expected a store file name' }).min(1).default(DEFAULT_DB),
  jsonEvents: boolField().default(false),
  regAwaitAuth: secondsField().default(240),
  defaultExpires: secondsField().optional(),
  maxExpires: secondsField().optional(),
  challengeReregister: boolField().default(true),
  advertise: checkedString((s) => hostArg(s, '--advertise'), 'an IP address or host name').optional(),
  metrics: checkedString(parseMetricsListen, 'ADDR:PORT for /metrics, /healthz, /readyz').optional(),
  logLevel: logLevelField(),
  hssSync: z.enum(['full', 'normal'], { error: 'expected full or normal' }).default('full'),
});
export type CoreConfig = z.output<typeof CoreConfigSchema>;

/** The run options for a validated configuration. */
export function coreOptionsFromConfig(c: CoreConfig): CoreRunOptions {
  return {
    listen: c.listen,
    domain: c.domain,
    db: c.db,
    jsonEvents: c.jsonEvents,
    regAwaitAuth: c.regAwaitAuth,
    challengeReRegister: c.challengeReregister,
    logLevel: c.logLevel,
    hssSync: c.hssSync,
    ...(c.metrics !== undefined && { metrics: c.metrics }),
    ...(c.defaultExpires !== undefined && { defaultExpires: c.defaultExpires }),
    ...(c.maxExpires !== undefined && { maxExpires: c.maxExpires }),
    ...(c.advertise !== undefined && { advertise: c.advertise }),
  };
}

export function registerCore(program: Command): void {
  const cmd = program
    .command('core')
    .description('run the embedded S-CSCF + HSS (IMS AKA registrar, bindings, routing) until SIGINT/SIGTERM')
    .option('--listen <addr:port>', 'UDP address and port to listen on (default 127.0.0.1:6060)')
    .option('--domain <domain>', 'home domain (Digest realm); required')
    .option('--db <file|url>', `HSS store: an SQLite file or postgres://user@host/db (default: $IMSEC_HSS_DB or ${DEFAULT_DB})`)
    .option('--json-events', 'log JSON lines even on a terminal (the default when stdout is not one)')
    .option('--metrics <addr:port>', 'serve Prometheus /metrics, /healthz and /readyz on this address')
    .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent (default info)')
    .option('--reg-await-auth <seconds>', 'reg-await-auth timer (24.229 Table 7.8.1), default 240')
    .option('--default-expires <seconds>', 'registration time granted when the UE asks for none')
    .option('--max-expires <seconds>', 'cap on the registration time granted')
    .option('--no-challenge-reregister', 'accept integrity-protected re-REGISTERs without a new challenge')
    .option('--advertise <addr>', 'address for Via and Service-Route when listening on a wildcard address')
    .option(
      '--hss-sync <mode>',
      'SQN durability: full (fsync before each SQN leaves; default) or normal (survives a crash of the process, not of the machine: load labs)',
    );
  addConfigOptions(cmd)
    .addHelpText(
      'after',
      '\nA --config file holds the same settings by long flag name (domain: ims.example, challenge-reregister: false); flags override it,\n$IMSEC_HSS_DB counts as --db.\n',
    )
    .action(async (_o: unknown, self: Command) => {
      const config = resolveConfig(self, CoreConfigSchema, { secrets: [], env: { db: process.env['IMSEC_HSS_DB'] } });
      if (config === undefined) return;
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const unguard = guardProcess();
      try {
        await runCore(coreOptionsFromConfig(config), { signal: ac.signal, out: (line) => process.stdout.write(`${line}\n`) });
      } finally {
        unguard();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
