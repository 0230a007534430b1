// The command line in the VM: `imsec core`, `imsec pcscf --backend xfrm` and `imsec ue register
// --backend xfrm --transport tcp` as separate processes in the two namespaces of the guest; the UE's
// SIP rides a TCP connection through kernel SAs; SIGTERM stops each, and XFRM is empty afterwards.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DOMAIN, K, OPC, subscriber } from '../support/ims-world.ts';
import type { Ctx } from './system-xfrm-scenarios.ts';

/** A CLI process whose stdout lines we wait on (everything also goes to a log file). */
export class Cli {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: (() => void)[] = [];

  constructor(argv: readonly string[], log: string) {
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const file = createWriteStream(log);
    this.child.stderr!.pipe(file);
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      file.write(`${l}\n`);
      for (const w of this.#waiters) w();
    });
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
  }

  /** The first stdout line matching `re` (waits up to `ms`). */
  async line(re: RegExp, ms = 60_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > end || this.child.exitCode !== null)
        throw new Error(`no line matching ${re} (exit ${this.child.exitCode}):\n${this.lines.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.#waiters.push(() => (clearTimeout(t), r()));
      });
      this.#waiters = [];
    }
  }

  async term(ms = 20_000): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

export async function cliScenario(c: Ctx, mainJs: string, out: string): Promise<void> {
  const label = 'e: the CLI: imsec core + imsec pcscf --backend xfrm | imsec ue register --backend xfrm --transport tcp';
  const s = subscriber(1);
  const db = '/tmp/imsec-system-cli-hss.db';
  const imsec = (ns: string | undefined, ...args: string[]) => [
    ...(ns ? ['ip', 'netns', 'exec', ns] : []),
    process.execPath,
    mainJs,
    ...args,
  ];
  const procs: Cli[] = [];
  const start = (name: string, argv: string[]) => {
    const p = new Cli(argv, `${out}/cli-${name}.log`);
    procs.push(p);
    return p;
  };
  try {
    const up = await c.check(`${label}: provision, start the core and the P-CSCF (kernel SAs, UDP and TCP inside)`, async () => {
      const add = start(
        'subscriber',
        imsec(undefined, 'subscriber', 'add', '--db', db, '--impi', s.impi, '--impu', s.impu, '--k', K, '--opc', OPC),
      );
      assert.equal(await add.exited, 0, add.lines.join('\n'));
      const core = start('core', imsec(c.nsNet, 'core', '--listen', '192.0.2.1:6060', '--domain', DOMAIN, '--db', db, '--json-events'));
      await core.line(/"listening"/);
      const pcscf = start(
        'pcscf',
        imsec(
          c.nsNet,
          'pcscf',
          '--listen',
          '192.0.2.1:5060',
          '--port-c',
          '5062',
          '--port-s',
          '5064',
          '--scscf',
          '192.0.2.1:6060',
          '--mode',
          'trans',
          '--backend',
          'xfrm',
          '--xfrm-instance',
          '7',
          '--json',
        ),
      );
      const hello = JSON.parse(await pcscf.line(/"event":"listening"/)) as Record<string, unknown>;
      assert.equal(hello.backend, 'xfrm');
      assert.equal(hello.protected_transports, 'udp+tcp');
      return hello;
    });
    if (!up) return;
    let ue: Cli | undefined;
    const reg = await c.check(`${label}: the UE registers over TCP through kernel SAs at both ends`, async () => {
      ue = start(
        'ue',
        imsec(
          c.nsUe,
          'ue',
          'register',
          '--pcscf',
          '192.0.2.1:5060',
          '--local',
          '192.0.2.2',
          '--impi',
          s.impi,
          '--impu',
          s.impu,
          '--k',
          K,
          '--opc',
          OPC,
          '--backend',
          'xfrm',
          '--transport',
          'tcp',
          '--xfrm-instance',
          '8',
          '--json',
        ),
      );
      await ue.line(/"event":"registered"/);
      const conns = c.sh(`ip netns exec ${c.nsUe} ss -tnH state established`);
      assert.match(conns, /192\.0\.2\.1:5064\b/, `a TCP connection to port_ps:\n${conns}`);
      for (const ns of [c.nsNet, c.nsUe])
        assert.equal((c.sh(`ip -n ${ns} xfrm state`).match(/proto esp/g) ?? []).length, 4, `4 kernel SAs in ${ns}`);
      return conns.trim();
    });
    if (!reg) return;
    await c.check(`${label}: SIGTERM the UE (it de-registers), then the P-CSCF and the core; XFRM empty in both namespaces`, async () => {
      assert.equal(await ue!.term(), 0, ue!.lines.join('\n'));
      assert.ok(
        ue!.lines.some((l) => /de-registered/.test(l)),
        ue!.lines.join('\n'),
      );
      for (const p of procs.slice(1).reverse()) assert.equal(await p.term(), 0, p.lines.join('\n'));
      for (const ns of [c.nsNet, c.nsUe]) {
        assert.equal(c.sh(`ip -n ${ns} xfrm state`).trim(), '', `ip -n ${ns} xfrm state`);
        assert.equal(c.sh(`ip -n ${ns} xfrm policy`).trim(), '', `ip -n ${ns} xfrm policy`);
      }
    });
  } finally {
    for (const p of procs) await p.term(3000);
  }
}
