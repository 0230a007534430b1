// A long-running child inside a lab namespace (a P-CSCF, a UE, tcpdump): its stdout as lines
// (events, an async iterator, expect-style waits), its stderr tail for error messages, and a
// kill that escalates from SIGTERM to SIGKILL. The lab owns these and kills them at teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { LabError } from './errors.ts';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
}

export type LineMatch = string | RegExp | ((line: string) => boolean);

export interface SpawnOptions {
  /** 'pipe' to write() to the child; default 'ignore'. */
  stdin?: 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also echo the child's output to ours, prefixed with this label (debugging a demo or a test). */
  echo?: string;
}

const HISTORY = 10_000; // stdout lines kept for waitForLine / lines(); a demo may run for hours
const STDERR_TAIL = 8_192;

function matches(m: LineMatch, line: string): boolean {
  if (typeof m === 'string') return line.includes(m);
  if (m instanceof RegExp) return m.test(line);
  return m(line);
}

/**
 * Events: 'line' (one stdout line), 'stderr' (one stderr line), 'exit' (ExitInfo).
 * waitForLine() works like expect, out of order: each wait takes the oldest matching line that no
 * earlier wait took, so nothing that came early is missed and no line is returned twice.
 */
export class LabProcess extends EventEmitter {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** Resolves (never rejects) when the process is gone. */
  readonly exited: Promise<ExitInfo>;
  private readonly history: string[] = [];
  private dropped = 0; // lines shifted out of history, so cursors stay absolute
  private readonly claimed = new Set<number>();
  private firstUnclaimed = 0;
  private stderrBuf = '';
  private exitInfo: ExitInfo | undefined;

  constructor(
    readonly ns: string,
    readonly argv: readonly string[],
    opts: SpawnOptions = {},
  ) {
    super();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
    this.child = child;
    this.pid = child.pid;
    let resolveExit!: (e: ExitInfo) => void;
    this.exited = new Promise((r) => (resolveExit = r));
    const finish = (e: ExitInfo) => {
      if (this.exitInfo) return;
      this.exitInfo = e;
      this.emit('exit', e);
      resolveExit(e);
    };
    child.on('error', (e: NodeJS.ErrnoException) => finish({ code: null, signal: null, error: e.code ?? e.message }));
    // 'close' comes after stdout/stderr ended, so every line is delivered before 'exit'. But a
    // grandchild that inherited stdout keeps the pipe open: then give up on it shortly after the
    // child itself exited, so neither waits nor teardown hang on it.
    child.on('close', (code, signal) => finish({ code, signal }));
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        if (this.exitInfo) return;
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish({ code, signal });
      }, 300);
    });
    child.stdin?.on('error', () => {}); // the child may exit while we write
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      this.history.push(line);
      if (this.history.length > HISTORY) {
        this.history.shift();
        this.claimed.delete(this.dropped++);
        this.firstUnclaimed = Math.max(this.firstUnclaimed, this.dropped);
      }
      if (opts.echo) process.stdout.write(`[${opts.echo}] ${line}\n`);
      this.emit('line', line);
    });
    createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (line) => {
      this.stderrBuf = (this.stderrBuf + line + '\n').slice(-STDERR_TAIL);
      if (opts.echo) process.stderr.write(`[${opts.echo}!] ${line}\n`);
      this.emit('stderr', line);
    });
  }

  /** ExitInfo once the process is gone, else undefined. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** The last stderr output (up to 8 KiB). */
  get stderr(): string {
    return this.stderrBuf;
  }

  /** A copy of the stdout lines kept so far (the last 10 000). */
  get output(): string[] {
    return [...this.history];
  }

  private describe(): string {
    return `\`${this.argv.join(' ')}\` in ${this.ns}`;
  }

  /** Writes one line to the child's stdin (spawned with stdin: 'pipe'). */
  write(line: string): void {
    if (!this.child.stdin) throw new LabError('LAB_BAD_OPTIONS', `${this.describe()}: spawned without stdin: 'pipe'`);
    this.child.stdin.write(line.endsWith('\n') ? line : `${line}\n`);
  }

  /**
   * The oldest stdout line not yet returned by a wait that matches (else the next one to come);
   * rejects with LAB_TIMEOUT or LAB_PROCESS_EXITED, quoting the recent output, so a failing test
   * says what the child printed.
   */
  waitForLine(match: LineMatch, timeoutMs = 10_000): Promise<string> {
    for (let i = Math.max(this.firstUnclaimed, this.dropped); i < this.dropped + this.history.length; i++) {
      const line = this.history[i - this.dropped]!;
      if (!this.claimed.has(i) && matches(match, line)) {
        this.claim(i);
        return Promise.resolve(line);
      }
    }
    return new Promise((resolve, reject) => {
      const onLine = (line: string) => {
        if (!matches(match, line)) return;
        this.claim(this.dropped + this.history.length - 1);
        done();
        resolve(line);
      };
      const fail = (code: 'LAB_TIMEOUT' | 'LAB_PROCESS_EXITED', what: string) => {
        done();
        const tail = this.history.slice(-5).join(' | ');
        reject(
          new LabError(
            code,
            `${this.describe()}: ${what} waiting for ${String(match)}; last stdout: ${tail || '(none)'}; stderr: ${this.stderrBuf.trim().slice(-600) || '(none)'}`,
          ),
        );
      };
      const onExit = (e: ExitInfo) => fail('LAB_PROCESS_EXITED', `exited (${e.error ?? e.signal ?? e.code})`);
      const timer = setTimeout(() => fail('LAB_TIMEOUT', `no match within ${timeoutMs} ms`), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.off('line', onLine);
        this.off('exit', onExit);
      };
      this.on('line', onLine);
      if (this.exitInfo) onExit(this.exitInfo);
      else this.on('exit', onExit);
    });
  }

  // Lines handed out by waitForLine are claimed, so two waits never return the same line, and a
  // line that arrived early (or out of order) stays available to the wait that wants it.
  private claim(i: number): void {
    this.claimed.add(i);
    while (this.claimed.has(this.firstUnclaimed)) this.claimed.delete(this.firstUnclaimed++);
  }

  /** Every stdout line from the oldest kept one on, then new ones as they come, until exit. */
  async *lines(): AsyncGenerator<string> {
    let i = this.dropped;
    for (;;) {
      if (i < this.dropped) i = this.dropped;
      if (i < this.dropped + this.history.length) {
        yield this.history[i++ - this.dropped]!;
        continue;
      }
      if (this.exitInfo) return;
      await new Promise<void>((r) => {
        const wake = () => {
          this.off('line', wake);
          this.off('exit', wake);
          r();
        };
        this.on('line', wake);
        this.on('exit', wake);
      });
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<string> {
    return this.lines();
  }

  /** Sends `signal`, then SIGKILL after graceMs if still running; resolves when it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 2_000): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    this.signal(signal);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }

  /** SIGKILL without waiting (teardown from a process 'exit' handler). */
  killSync(): void {
    if (!this.exitInfo) this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      this.child.kill(sig);
    } catch {
      /* already gone */
    }
  }
}
