// JSON-lines RPC between the guest orchestrator and its helper processes. A node process cannot
// change network namespace, so each side of the interop test is its own process under
// `ip netns exec`, driven over stdin/stdout; stderr goes to a log file in the output directory.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export type Handler = (args: any) => unknown;

/** Helper side: answers {id, op, args} lines with {id, ok, result | error}; exits when stdin closes. */
export function serve(handlers: Readonly<Record<string, Handler>>): void {
  const write = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let req: { id: number; op: string; args?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return;
    }
    const h = handlers[req.op];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown op ${req.op}`);
        return h(req.args ?? {});
      })
      .then(
        (result) => write({ id: req.id, ok: true, result: result ?? null }),
        (e: unknown) => write({ id: req.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
      );
  });
  // The orchestrator is gone (or done): leave, closing every socket with the process.
  rl.on('close', () => process.exit(0));
  write({ ready: true });
}

/** Orchestrator side: one helper process. */
export class RpcChild {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; op: string }>();
  #nextId = 1;
  #exited: string | undefined;
  #stderrTail = '';

  private constructor(
    readonly name: string,
    child: ChildProcess,
  ) {
    this.#child = child;
  }

  /** Spawns `argv` (stdout = RPC, stderr → logFile) and waits for its ready line. */
  static start(name: string, argv: readonly string[], logFile: string, readyTimeoutMs = 60_000): Promise<RpcChild> {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const rpc = new RpcChild(name, child);
    const log = createWriteStream(logFile, { flags: 'a' });
    child.stderr!.on('data', (c: Buffer) => {
      log.write(c);
      rpc.#stderrTail = (rpc.#stderrTail + c.toString('utf8')).slice(-4000);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name}: not ready after ${readyTimeoutMs} ms; stderr: ${rpc.#stderrTail}`));
      }, readyTimeoutMs);
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        let msg: { ready?: boolean; id?: number; ok?: boolean; result?: unknown; error?: string };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return;
        }
        if (msg.ready) {
          clearTimeout(timer);
          resolve(rpc);
          return;
        }
        const p = msg.id !== undefined ? rpc.#pending.get(msg.id) : undefined;
        if (!p) return;
        rpc.#pending.delete(msg.id!);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(`${name}.${p.op}: ${msg.error}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        log.end();
        rpc.#exited = `${name} exited (${signal ?? code}); stderr: ${rpc.#stderrTail}`;
        for (const p of rpc.#pending.values()) p.reject(new Error(rpc.#exited));
        rpc.#pending.clear();
        reject(new Error(rpc.#exited));
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** One call; rejects after `timeoutMs` so that a stuck helper fails its batch, not the whole VM run. */
  call<T = unknown>(op: string, args: unknown = {}, timeoutMs = 30_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(this.#exited));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}.${op}: no answer after ${timeoutMs} ms; stderr: ${this.#stderrTail}`));
      }, timeoutMs);
      const settle =
        <A>(f: (a: A) => void) =>
        (a: A) => {
          clearTimeout(timer);
          f(a);
        };
      this.#pending.set(id, { resolve: settle(resolve as (v: unknown) => void), reject: settle(reject), op });
      this.#child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** Closes its stdin (it exits by itself); kills it if it has not after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#exited) return;
    const done = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(timer);
  }
}
