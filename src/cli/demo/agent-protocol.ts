// The line protocol between `imsec demo --nat` (or a NAT test) and its agents, the processes that
// run the network functions inside the lab's namespaces: one JSON object per line each way.
// In: {"id":N,"cmd":"…","args":{…}}. Out: {"id":N,"ok":true,"result":…} | {"id":N,"ok":false,"error":"…"}
// and events {"ev":"…",…}. Never carries keys (the keylog is written to a file by the agent).
import { createInterface } from 'node:readline';
import type { LabProcess } from '../../lab/process.ts';

export type Handler = (args: Record<string, unknown>) => unknown;

export interface AgentServer {
  /** Writes one event line. */
  emit(ev: string, payload?: Record<string, unknown>): void;
}

/**
 * Serves commands from stdin until `quit` (or stdin ends: the parent is gone), then runs `stop`
 * and exits. Commands of one agent run one after another unless a handler returns at once.
 */
export function serveAgent(handlers: Record<string, Handler>, stop: () => Promise<void>): AgentServer {
  const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');
  let stopping: Promise<void> | undefined;
  const finish = (code: number) => {
    stopping ??= stop()
      .catch((e: unknown) => void process.stderr.write(`stop: ${e instanceof Error ? e.message : String(e)}\n`))
      .finally(() => process.exit(code));
    return stopping;
  };
  createInterface({ input: process.stdin, crlfDelay: Infinity })
    .on('line', (line) => {
      if (!line.trim()) return;
      let msg: { id?: unknown; cmd?: unknown; args?: unknown };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return out({ id: null, ok: false, error: `not JSON: ${line.slice(0, 80)}` });
      }
      const id = msg.id ?? null;
      if (msg.cmd === 'quit') {
        out({ id, ok: true, result: null });
        void finish(0);
        return;
      }
      const h = typeof msg.cmd === 'string' ? handlers[msg.cmd] : undefined;
      if (!h) return out({ id, ok: false, error: `unknown command ${JSON.stringify(msg.cmd)}` });
      Promise.resolve()
        .then(() => h((msg.args ?? {}) as Record<string, unknown>))
        .then(
          (result) => out({ id, ok: true, result: result ?? null }),
          (e: unknown) => out({ id, ok: false, error: e instanceof Error ? e.message : String(e) }),
        );
    })
    .on('close', () => void finish(0));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void finish(0));
  return { emit: (ev, payload = {}) => out({ ev, ...payload }) };
}

/** Parses one agent output line; undefined for anything that is not a JSON object. */
export function parseAgentLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The parent's side: commands with answers, and the agent's events. */
export class AgentClient {
  #next = 1;
  readonly events: Record<string, unknown>[] = [];
  readonly #listeners = new Set<(e: Record<string, unknown>) => void>();

  constructor(readonly proc: LabProcess) {
    proc.on('line', (line: string) => {
      const o = parseAgentLine(line);
      if (!o || typeof o.ev !== 'string') return;
      this.events.push(o);
      for (const l of this.#listeners) l(o);
    });
  }

  /** Waits for the agent's `ready` event and returns it. */
  async ready(timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return this.waitEvent('ready', () => true, timeoutMs);
  }

  /** Runs one command; rejects with the agent's error message (or a timeout naming the command). */
  async call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++;
    this.proc.write(JSON.stringify({ id, cmd, args }));
    const line = await this.proc.waitForLine((l) => parseAgentLine(l)?.id === id, timeoutMs);
    const o = parseAgentLine(line)!;
    if (o.ok !== true) throw new Error(`${cmd}: ${String(o.error)}`);
    return o.result as T;
  }

  /** The first event named `ev` (already seen or still to come) that satisfies `pred`. */
  waitEvent(ev: string, pred: (e: Record<string, unknown>) => boolean = () => true, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const hit = this.events.find((e) => e.ev === ev && pred(e));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const on = (e: Record<string, unknown>) => {
        if (e.ev !== ev || !pred(e)) return;
        done();
        resolve(e);
      };
      const onExit = () => {
        done();
        reject(new Error(`agent in ${this.proc.ns} exited while waiting for event ${ev}: ${this.proc.stderr.trim().slice(-600)}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no ${ev} event from the agent in ${this.proc.ns} within ${timeoutMs} ms; stderr: ${this.proc.stderr.trim().slice(-600) || '(none)'}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(on);
        this.proc.off('exit', onExit);
      };
      this.#listeners.add(on);
      this.proc.on('exit', onExit);
    });
  }

  /** Asks the agent to stop and waits for it (killed after `graceMs`). */
  async quit(graceMs = 5_000): Promise<void> {
    if (this.proc.exit) return;
    try {
      this.proc.write(JSON.stringify({ id: this.#next++, cmd: 'quit' }));
    } catch {
      /* stdin gone */
    }
    const t = setTimeout(() => void this.proc.kill('SIGKILL'), graceMs);
    await this.proc.exited;
    clearTimeout(t);
  }
}
