// `imsec ue register|message` in a child process against the scripted fake P-CSCF of the UE tests
// (UDP-enc-tun, userspace ESP): steps printed, SIGINT de-registers, exit statuses, no keys printed.
// main.ts does not wire the command yet (the lead does), so a two-line runner stands in for it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { FakePcscf, K, OPC } from '../ue/_fake-pcscf.ts';
import { InputError } from '../util/errors.ts';
import { parseHostPortArg, registerUe } from './ue.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const RUNNER = `
import { Command } from 'commander';
import { registerUe } from './src/cli/ue.ts';
import { reportError } from './src/cli/output.ts';
const p = new Command().exitOverride();
registerUe(p);
try { await p.parseAsync(process.argv.slice(1), { from: 'user' }); } catch (e) { process.exitCode = reportError(e); }
`;
const KHEX = Buffer.from(K).toString('hex');
const OPCHEX = Buffer.from(OPC).toString('hex');

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Child {
  lines: string[];
  stderr: () => string;
  waitLine(re: RegExp, ms?: number): Promise<string>;
  exit: Promise<number | null>;
  kill(sig: NodeJS.Signals): void;
}

function imsecUe(args: string[]): Child {
  const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', RUNNER, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let err = '';
  let buf = '';
  const waiters: (() => void)[] = [];
  c.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  c.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
  return {
    lines,
    stderr: () => err,
    exit,
    kill: (sig) => c.kill(sig),
    async waitLine(re, ms = 15000) {
      const end = Date.now() + ms;
      for (;;) {
        const hit = lines.find((l) => re.test(l));
        if (hit) return hit;
        if (Date.now() > end) throw new Error(`no line matching ${re}; stdout:\n${lines.join('\n')}\nstderr:\n${err}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}

const fakes: FakePcscf[] = [];
after(async () => {
  for (const f of fakes) await f.close();
});

async function setup(): Promise<{ fake: FakePcscf; args: string[] }> {
  const encap = await freeUdpPort();
  const fake = await FakePcscf.create({ k: K, opc: OPC, ueEncapPort: () => encap });
  fakes.push(fake);
  const args = [
    '--pcscf',
    `127.0.0.1:${fake.port}`,
    '--impi',
    'alice@ims.example',
    '--impu',
    'sip:alice@ims.example',
    '--k',
    KHEX,
    '--opc',
    OPCHEX,
    '--local',
    '127.0.0.1',
    '--mode',
    'udp-enc-tun',
    '--encap-port',
    String(encap),
    '--pcscf-encap-port',
    String(fake.backend.encapPort),
    '--expires',
    '600',
  ];
  return { fake, args };
}

function assertNoKeys(text: string, extra: Uint8Array[] = []): void {
  for (const secret of [KHEX, OPCHEX, ...extra.map((b) => Buffer.from(b).toString('hex'))]) {
    assert.ok(!text.toLowerCase().includes(secret.slice(0, 12)), 'key material in the output');
  }
}

test('ue register --json: registers, prints one JSON object per step, de-registers on SIGINT and exits 0', async () => {
  const { fake, args } = await setup();
  const c = imsecUe(['ue', 'register', ...args, '--json']);
  const r1 = await fake.next(15000);
  const ch = await fake.challenge(r1);
  const r2 = await fake.next().catch((e: Error) => {
    throw new Error(`${e.message} (protected REGISTER); child said:\n${c.lines.join('\n')}\n${c.stderr()}`);
  });
  await fake.ok(r2, ch.set!);
  const reg = JSON.parse(await c.waitLine(/"event":"registered"/));
  assert.equal(reg.status.state, 'registered');
  assert.equal(reg.status.sets[0].sas.length, 4);
  assert.ok('src_port' in reg.status.sets[0].sas[0], 'snake_case keys');
  c.kill('SIGINT');
  const d = await fake.next().catch((e: Error) => {
    throw new Error(`${e.message}; child said:\n${c.lines.join('\n')}\n${c.stderr()}`);
  });
  assert.equal(d.req.headers.get('Expires'), '0');
  assert.equal(d.pctx?.set, ch.set);
  await fake.reply(d, 200);
  assert.equal(await c.exit, 0, c.stderr());
  const events = c.lines.map((l) => JSON.parse(l).event as string);
  for (const e of ['start', 'step', 'sa-created', 'registered', 'sa-deleted']) assert.ok(events.includes(e), `event ${e}`);
  assert.ok(c.lines.some((l) => /de-registered/.test(l)));
  assertNoKeys(c.lines.join('\n') + c.stderr(), [ch.vector.ck, ch.vector.ik]);
});

test('ue message: registers, sends the MESSAGE over SA1, prints the status, de-registers; exit 0', async () => {
  const { fake, args } = await setup();
  const c = imsecUe(['ue', 'message', ...args, '--to', 'sip:bob@ims.example', '--text', 'hello from the CLI']);
  const r1 = await fake.next(15000);
  const ch = await fake.challenge(r1);
  const r2 = await fake.next();
  await fake.ok(r2, ch.set!);
  const m = await fake.next();
  assert.equal(m.req.method, 'MESSAGE');
  assert.equal(m.pctx?.sa.name, 'SA1');
  assert.equal(new TextDecoder().decode(m.req.body), 'hello from the CLI');
  await fake.reply(m, 202);
  const d = await fake.next();
  assert.equal(d.req.headers.get('Expires'), '0');
  await fake.reply(d, 200);
  assert.equal(await c.exit, 0, c.stderr());
  assert.ok(
    c.lines.some((l) => /MESSAGE 202 Accepted/.test(l)),
    c.lines.join('\n'),
  );
});

test('ue register: a MAC failure exits 1 naming mac_failure', async () => {
  const { fake, args } = await setup();
  const c = imsecUe(['ue', 'register', ...args]);
  const r1 = await fake.next(15000);
  await fake.challenge(r1, { k: new Uint8Array(16).fill(9) });
  const r2 = await fake.next();
  await fake.reply(r2, 403);
  assert.equal(await c.exit, 1);
  assert.match(c.stderr(), /registration failed: mac_failure \(403\)/);
});

test('bad input is an InputError (exit 2): no OP/OPc, a bad --pcscf, a bad --mode; K never echoed', async () => {
  const run = async (extra: string[]) => {
    const p = new Command().exitOverride();
    registerUe(p);
    return p.parseAsync(['ue', 'register', '--impi', 'a@b', '--impu', 'sip:a@b', ...extra], { from: 'user' });
  };
  await assert.rejects(
    run(['--pcscf', '127.0.0.1:5060', '--k', KHEX]),
    (e: unknown) => e instanceof InputError && /--op and --opc/.test(e.message),
  );
  await assert.rejects(run(['--pcscf', '127.0.0.1:99999', '--k', KHEX, '--opc', OPCHEX]), InputError);
  await assert.rejects(run(['--pcscf', '127.0.0.1', '--k', KHEX, '--opc', OPCHEX, '--mode', 'tunnel']), /--mode/);
  await assert.rejects(
    run(['--pcscf', '127.0.0.1', '--k', 'zz' + KHEX, '--opc', OPCHEX]),
    (e: unknown) => e instanceof InputError && !e.message.includes(KHEX),
  );
});

test('parseHostPortArg: host, host:port, [v6]:port, bare v6', () => {
  assert.deepEqual(parseHostPortArg('pcscf.example', 'x'), { host: 'pcscf.example', port: 5060 });
  assert.deepEqual(parseHostPortArg('10.0.0.1:5070', 'x'), { host: '10.0.0.1', port: 5070 });
  assert.deepEqual(parseHostPortArg('[::1]:5080', 'x'), { host: '::1', port: 5080 });
  assert.deepEqual(parseHostPortArg('fd00::1', 'x'), { host: 'fd00::1', port: 5060 });
  assert.throws(() => parseHostPortArg('h:0', 'x'), InputError);
});
