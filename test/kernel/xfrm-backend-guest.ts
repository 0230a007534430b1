// Runs inside the VM (Debian kernel with ESP), driven by xfrm-backend.test.ts: two namespaces joined
// by a veth (UE 192.0.2.10 / 2001:db8::10, P-CSCF .20 / ::20), one XfrmBackend per namespace in
// xfrm-backend-peer.js, then the scenarios. Prints one JSON line per check: {check, ok, detail}.
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarios } from './xfrm-backend-scenarios.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const NS_UE = 'imsec-xfrm-ue';
export const NS_PC = 'imsec-xfrm-pc';

export function sh(cmd: string): string {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A peer process in a namespace, spoken to with JSON lines. */
export class Peer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #id = 0;
  stderr = '';

  constructor(readonly ns: string) {
    this.#child = spawn('ip', ['netns', 'exec', ns, process.execPath, join(HERE, 'xfrm-backend-peer.js')], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      let m: { id: number; ok: boolean; result?: unknown; error?: { message: string; code?: string; errno?: number } };
      try {
        m = JSON.parse(line);
      } catch {
        this.stderr += `[stdout] ${line}\n`;
        return;
      }
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.result);
      else p.reject(Object.assign(new Error(m.error?.message ?? 'peer error'), { code: m.error?.code, errno: m.error?.errno }));
    });
    this.#child.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`peer in ${ns} exited (${code}): ${this.stderr.slice(-1500)}`));
      this.#pending.clear();
    });
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  kill(): Promise<void> {
    return new Promise((r) => {
      this.#child.once('exit', () => r());
      this.#child.kill('SIGKILL');
    });
  }

  async exit(): Promise<void> {
    const done = new Promise<void>((r) => this.#child.once('exit', () => r()));
    await this.call('exit').catch(() => undefined);
    await done;
  }
}

export type Check = (name: string, f: () => Promise<unknown> | unknown) => Promise<void>;

function setupNetns(): void {
  sh(`ip netns add ${NS_UE} && ip netns add ${NS_PC}`);
  sh(`ip link add ue0 netns ${NS_UE} type veth peer name pc0 netns ${NS_PC}`);
  for (const [ns, dev, last] of [
    [NS_UE, 'ue0', '10'],
    [NS_PC, 'pc0', '20'],
  ] as const) {
    sh(`ip -n ${ns} link set lo up && ip -n ${ns} link set ${dev} up`);
    sh(`ip -n ${ns} addr add 192.0.2.${last}/24 dev ${dev} && ip -n ${ns} addr add 2001:db8::${last}/64 dev ${dev} nodad`);
  }
  sh(`ip -n ${NS_UE} addr add 192.0.2.11/24 dev ue0`);
}

async function main(): Promise<void> {
  let failed = 0;
  const check: Check = async (name, f) => {
    const t0 = Date.now();
    try {
      const detail = await f();
      process.stdout.write(`${JSON.stringify({ check: name, ok: true, ms: Date.now() - t0, detail: detail ?? null })}\n`);
    } catch (e) {
      failed++;
      process.stdout.write(`${JSON.stringify({ check: name, ok: false, ms: Date.now() - t0, detail: (e as Error).stack ?? String(e) })}\n`);
    }
  };
  setupNetns();
  const ue = new Peer(NS_UE);
  const pc = new Peer(NS_PC);
  try {
    await scenarios({ ue, pc, check, sh, newPeer: (ns: string) => new Peer(ns) });
  } finally {
    await Promise.all([ue.exit(), pc.exit()]);
    if (ue.stderr.trim()) process.stderr.write(`[ue peer stderr]\n${ue.stderr}\n`);
    if (pc.stderr.trim()) process.stderr.write(`[pcscf peer stderr]\n${pc.stderr}\n`);
    sh(`ip netns del ${NS_UE}; ip netns del ${NS_PC}; true`);
  }
  process.stdout.write(`${JSON.stringify({ done: true, failed })}\n`);
}

await main();
