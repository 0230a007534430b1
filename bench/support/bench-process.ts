// A child process of a benchmark (\`bin/imsec.mjs core|pcscf|load\`): its stderr lines, its stdout, a
// \`stats\` line on SIGUSR2 (src/cli/stats-signal.ts: RSS, heap and CPU after a forced GC), a heap
// snapshot on SIGUSR1. Shared by npm run bench:load and bench:pcscf-memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** One \`stats\` line of a process (src/cli/stats-signal.ts). */
export interface Stats {
  rss: number;
  cpu_user_ms: number;
  cpu_system_ms: number;
  [k: string]: unknown;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How a BenchProcess runs node: flags of the caller, a CPU profile, heap snapshots on SIGUSR1. */
export interface BenchProcessOptions {
  readonly nodeFlags?: readonly string[];
  readonly cpuProf?: string;
  readonly heapDir?: string;
}

/** `node [flags] bin/imsec.mjs ARGV` in the repository. */
export class BenchProcess {
  readonly child: ChildProcess;
  readonly #waiters: ((s: Stats) => void)[] = [];
  readonly lines: string[] = [];
  stdout = '';
  constructor(
    readonly name: string,
    argv: string[],
    o: BenchProcessOptions = {},
  ) {
    // 100k UEs take GBs of heap at both ends: past V8's default limit.
    const node = [
      '--max-old-space-size=12288',
      ...(o.nodeFlags ?? []),
      ...(o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `${name}.cpuprofile`] : []),
      ...(o.heapDir ? ['--heapsnapshot-signal=SIGUSR1', '--diagnostic-dir', o.heapDir] : []),
    ];
    this.child = spawn(process.execPath, [...node, 'bin/imsec.mjs', ...argv], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('{"event":"stats"')) this.#waiters.shift()?.(JSON.parse(line) as Stats);
        else this.lines.push(line);
      }
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
  }
  stats(): Promise<Stats> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.child.kill('SIGUSR2');
    });
  }
  /** Like stats(), but undefined once the process has exited (the load process ends on its own). */
  tryStats(): Promise<Stats | undefined> {
    if (this.child.exitCode !== null) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onExit = () => resolve(undefined);
      this.child.once('exit', onExit);
      this.#waiters.push((s) => {
        this.child.off('exit', onExit);
        resolve(s);
      });
      this.child.kill('SIGUSR2');
    });
  }
  /** A heap snapshot into the --heap-snapshot directory (SIGUSR1); resolves once the file is complete. */
  async snapshot(dir: string): Promise<void> {
    const before = new Set(readdirSync(dir));
    this.child.kill('SIGUSR1');
    for (;;) {
      await sleep(500);
      const f = readdirSync(dir).find((x) => !before.has(x) && x.endsWith('.heapsnapshot'));
      // V8 writes the file in one go; its size stops changing when done.
      if (f) {
        const a = statSync(join(dir, f)).size;
        await sleep(1000);
        if (statSync(join(dir, f)).size === a && a > 0) return;
      }
    }
  }
  async until(re: RegExp, where: 'stdout' | 'stderr', ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(where === 'stdout' ? this.stdout : this.lines.join('\n'))) {
      if (Date.now() > end) throw new Error(`${this.name}: timed out waiting for ${re}: ${this.lines.slice(-5).join('\n')}`);
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited ${this.child.exitCode}: ${this.lines.slice(-5).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  stop(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

/** Waits until a process has bound UDP 127.0.0.1:port (its SIGUSR2 handler is installed before). */
export async function bound(port: number, p: BenchProcess): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const inUse = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(true));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (inUse) return;
    if (p.child.exitCode !== null || Date.now() > end) throw new Error(`${p.name} did not start: ${p.lines.slice(-5).join('\n')}`);
    await sleep(100);
  }
}
