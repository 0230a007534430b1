// Running the host tools of the NAT lab (ip, nft, sysctl, conntrack, tcpdump/tshark) through
// child_process — in the root namespace or inside a named one — and the availability probes that
// decide whether this host can run a lab at all. Every failure names the command and its stderr.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { LabCommandError, LabError, LabUnavailableError } from './errors.ts';

/** Where each tool comes from on Debian, for the "missing" messages. */
const PACKAGE: Record<string, string> = {
  ip: 'iproute2',
  nft: 'nftables',
  sysctl: 'procps',
  conntrack: 'conntrack',
  tcpdump: 'tcpdump',
  tshark: 'tshark',
};

// Non-root shells often lack the sbin directories in PATH, where ip/nft/sysctl live.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];
const toolCache = new Map<string, string | undefined>();

/** The absolute path of an executable found in PATH or the sbin directories, or undefined. */
export function findTool(name: string): string | undefined {
  if (name.includes('/')) return name;
  if (toolCache.has(name)) return toolCache.get(name);
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...EXTRA_DIRS];
  let found: string | undefined;
  for (const d of dirs) {
    try {
      accessSync(`${d}/${name}`, constants.X_OK);
      found = `${d}/${name}`;
      break;
    } catch {
      /* next directory */
    }
  }
  toolCache.set(name, found);
  return found;
}

/** undefined when the tool is installed; otherwise a reason naming the Debian package. */
export function toolMissing(name: string): string | undefined {
  if (findTool(name)) return undefined;
  const pkg = PACKAGE[name];
  return `\`${name}\` not found in PATH or ${EXTRA_DIRS.join(', ')}${pkg ? ` (apt-get install ${pkg})` : ''}`;
}

function requireTool(name: string): string {
  const p = findTool(name);
  if (!p) throw new LabUnavailableError(toolMissing(name)!);
  return p;
}

/** `ip netns exec NS argv…`, with argv[0] resolved so a short PATH inside does not matter. */
export function nsArgv(ns: string, argv: readonly string[]): string[] {
  if (argv.length === 0) throw new LabError('LAB_BAD_OPTIONS', 'exec: empty argv');
  const [cmd, ...rest] = argv as [string, ...string[]];
  return [requireTool('ip'), 'netns', 'exec', ns, findTool(cmd) ?? cmd, ...rest];
}

export interface RunOptions {
  /** Written to the command's stdin (e.g. an nft script for `nft -f -`). */
  input?: string;
  /** Killed (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Throw LabCommandError on a non-zero exit (default true). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with the pid once started and with undefined when done (the lab tracks live children). */
  onPid?: (pid: number | undefined) => void;
}

export interface RunResult {
  argv: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs one command to completion, capturing stdout and stderr. argv[0] is looked up with findTool. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const full = [findTool(cmd) ?? cmd, ...args];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
    if (child.pid !== undefined) opts.onPid?.(child.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A command that does not read its stdin closes the pipe early: EPIPE is not our failure.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      opts.onPid?.(undefined);
      reject(new LabCommandError(full, null, '', `could not start (${e.code ?? e.message})`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.onPid?.(undefined);
      const r: RunResult = {
        argv: full,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) reject(new LabError('LAB_TIMEOUT', `\`${full.join(' ')}\` did not finish within ${timeoutMs} ms`));
      else if (code !== 0 && opts.check !== false) reject(new LabCommandError(full, code, r.stderr || r.stdout));
      else resolve(r);
    });
  });
}

/** The synchronous twin of run(), for teardown inside a process 'exit' handler. */
export function runSync(argv: readonly string[], opts: { input?: string; timeoutMs?: number; check?: boolean } = {}): RunResult {
  const [cmd, ...args] = argv as [string, ...string[]];
  const full = [findTool(cmd) ?? cmd, ...args];
  const r = spawnSync(full[0]!, full.slice(1), { input: opts.input ?? '', encoding: 'utf8', timeout: opts.timeoutMs ?? 10_000 });
  if (r.error) throw new LabCommandError(full, null, '', `could not run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`);
  const res: RunResult = { argv: full, code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  if (r.status !== 0 && opts.check !== false) throw new LabCommandError(full, r.status, r.stderr || r.stdout);
  return res;
}

export type Availability = { ok: true } | { ok: false; reason: string };

/** Effective capability bits of this process (CapEff in /proc/self/status), or undefined. */
function effectiveCaps(): bigint | undefined {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : undefined;
  } catch {
    return undefined;
  }
}

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

function staticReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  const uid = process.getuid?.() ?? -1;
  const caps = effectiveCaps();
  const has = (bit: bigint) => caps !== undefined && (caps >> bit) & 1n;
  if (uid !== 0) return `needs root (network namespaces, veths and nftables): running as uid ${uid}`;
  if (caps !== undefined && (!has(CAP_NET_ADMIN) || !has(CAP_SYS_ADMIN))) {
    return `running as root but without ${!has(CAP_NET_ADMIN) ? 'CAP_NET_ADMIN' : 'CAP_SYS_ADMIN'} (e.g. an unprivileged container)`;
  }
  for (const t of ['ip', 'nft', 'sysctl']) {
    const m = toolMissing(t);
    if (m) return m;
  }
  if (!existsSync('/proc/self/ns/net')) return 'the kernel has no network namespace support (/proc/self/ns/net missing)';
  return undefined;
}

/** Creates a throwaway namespace, runs `script` through `nft -f -` inside it, deletes it. */
function probeNft(script: string, what: string): string | undefined {
  const ns = `imsecprobe${randomBytes(4).toString('hex')}`;
  try {
    runSync(['ip', 'netns', 'add', ns]);
  } catch (e) {
    return `cannot create a network namespace: ${(e as Error).message}`;
  }
  try {
    runSync(nsArgv(ns, ['nft', '-f', '-']), { input: script });
    return undefined;
  } catch (e) {
    return `${what} does not work in a network namespace: ${(e as Error).message}`;
  } finally {
    runSync(['ip', 'netns', 'del', ns], { check: false });
  }
}

const natProbe = (family: 'ip' | 'ip6') =>
  `table ${family} imsecprobe {\n chain p {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname "lo" masquerade random\n }\n}\n`;

let v4: Availability | undefined;
let v6: Availability | undefined;

/**
 * Whether this host can build an IPv4 NAT lab: root (with CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip`,
 * `nft` and `sysctl` installed, netns support, and nftables masquerade working inside a namespace
 * (probed once per process with a throwaway namespace, ~50 ms). Synchronous, so a test file can
 * write `{ skip: … }` directly; tests skip with `reason`.
 */
export function labAvailability(): Availability {
  if (!v4) {
    const reason = staticReason() ?? probeNft(natProbe('ip'), 'nftables NAT (ip nat masquerade)');
    v4 = reason ? { ok: false, reason } : { ok: true };
  }
  return v4;
}

/** Whether IPv6 (and nftables ip6 NAT) works too, for family 'ipv6' and 'dual'. */
export function ip6NatAvailability(): Availability {
  if (!v6) {
    const base = labAvailability();
    if (!base.ok) v6 = base;
    else if (!existsSync('/proc/sys/net/ipv6')) v6 = { ok: false, reason: 'the kernel has IPv6 disabled (/proc/sys/net/ipv6 missing)' };
    else {
      const reason = probeNft(natProbe('ip6'), 'nftables IPv6 NAT (ip6 nat masquerade)');
      v6 = reason ? { ok: false, reason } : { ok: true };
    }
  }
  return v6;
}
