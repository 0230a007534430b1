// `imsec pcscf`: option checks, the event line format, and a run in-process (a scripted UE
// registers through it against a fake S-CSCF; stopping removes the SAs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { FakeScscf, LOOP, ScriptedUe } from '../pcscf/_test-kit.ts';
import { InputError } from '../util/errors.ts';
import { formatEvent, parsePcscfArgs, registerPcscf, runPcscf } from './pcscf.ts';
import { EspDropReporter, formatDrop } from './esp-drops.ts';
import { createSocket } from 'node:dgram';

const base = { listen: '127.0.0.1:5060', portC: '5064', portS: '5066', scscf: '127.0.0.1:6060' };

test('parsePcscfArgs: addresses, ports, mode, policy and their errors', () => {
  const a = parsePcscfArgs({ ...base, mode: 'udp-enc-tun', policy: 'hmac-sha-1-96/null', regAwaitAuth: '30' });
  assert.deepEqual(
    { ...a, policy: { ...a.policy } },
    {
      address: '127.0.0.1',
      port: 5060,
      portC: 5064,
      portS: 5066,
      scscf: { address: '127.0.0.1', port: 6060 },
      mode: 'udp-enc-tun',
      policy: { allow: [{ alg: 'hmac-sha-1-96', ealg: 'null' }] },
      regAwaitAuthMs: 30_000,
      limits: {},
      encapPort: 4500,
      json: false,
      backend: 'userspace',
      logLevel: 'info',
      heapCompactionQuietMs: 30_000,
    },
  );
  assert.equal(parsePcscfArgs({ ...base, heapCompaction: false }).heapCompactionQuietMs, 0);
  assert.equal(parsePcscfArgs({ ...base, heapCompactionQuiet: '45' }).heapCompactionQuietMs, 45_000);
  assert.deepEqual(parsePcscfArgs({ ...base, listen: '[::1]:5060', scscf: '[::1]:6060' }).address, '::1');
  assert.equal(parsePcscfArgs({ ...base, allowDeprecated: true }).policy.allowDeprecated, true);
  for (const bad of [
    { listen: '127.0.0.1' },
    { scscf: 'nohost:' },
    { mode: 'tun' },
    { portC: '70000' },
    { portC: '5066' },
    { policy: 'md5' },
    { regAwaitAuth: '0' },
    { heapCompactionQuiet: '0' },
    { heapCompactionQuiet: '1m' },
    { backend: 'kernel' },
    { xfrmInstance: '65535' },
  ]) {
    assert.throws(() => parsePcscfArgs({ ...base, ...bad }), InputError, JSON.stringify(bad));
  }
});

test('formatEvent: one line, addresses as ADDR:PORT, nested values flattened, the message last', () => {
  const at = new Date('2024-01-01T12:34:56.789Z');
  assert.equal(
    formatEvent(
      'rejected',
      { reason: 'identity-not-registered', message: 'no such IMPU', status: 403, method: 'MESSAGE', from: { address: '::1', port: 5 } },
      at,
    ),
    '12:34:56.789 rejected from=[::1]:5 reason=identity-not-registered status=403 method=MESSAGE: no such IMPU',
  );
  assert.equal(
    formatEvent(
      'sa-created',
      { impi: 'a@b', set: 'a@b#1', mode: 'udp-enc-tunnel', alg: 'hmac-sha-1-96', ealg: 'null', spis: { uc: 1, us: 2, pc: 3, ps: 4 } },
      at,
    ),
    '12:34:56.789 sa-created impi=a@b set=a@b#1 mode=udp-enc-tunnel alg=hmac-sha-1-96 ealg=null spis.uc=1 spis.us=2 spis.pc=3 spis.ps=4',
  );
});

test('the command refuses bad options with an InputError (exit 2)', async () => {
  const program = new Command().exitOverride();
  registerPcscf(program);
  await assert.rejects(
    program.parseAsync([
      'node',
      'imsec',
      'pcscf',
      '--listen',
      '127.0.0.1:5060',
      '--port-c',
      '1',
      '--port-s',
      '2',
      '--scscf',
      '127.0.0.1:6060',
      '--mode',
      'nat',
    ]),
    InputError,
  );
});

test('runPcscf: a UE registers through it, events are printed as JSON lines, aborting removes the SAs', async () => {
  const scscf = await FakeScscf.start();
  const lines: string[] = [];
  const ac = new AbortController();
  const args = parsePcscfArgs({
    listen: `${LOOP}:0`,
    portC: '0',
    portS: '0',
    scscf: `${LOOP}:${scscf.endpoint.port}`,
    mode: 'udp-enc-tun',
    encapPort: '0',
    json: true,
  });
  const run = runPcscf(args, { signal: ac.signal, write: (l) => lines.push(l) });
  let ue: ScriptedUe | undefined;
  try {
    for (let i = 0; i < 200 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const hello = JSON.parse(lines[0]!);
    assert.equal(hello.event, 'listening');
    ue = await ScriptedUe.create({
      pcscf: { address: LOOP, port: hello.port, portC: hello.port_c, portS: hello.port_s },
      pcEncapPort: hello.encap_port,
      impi: 'alice@ims.example.org',
      impu: 'sip:alice@ims.example.org',
    });
    assert.equal((await ue.register()).res.status, 200);
    ac.abort();
    await run;
    const events = lines.map((l) => JSON.parse(l).event);
    assert.deepEqual(events, ['listening', 'sa-created', 'sa-promoted', 'registered', 'deregistered', 'sa-deleted', 'stopped']);
    assert.doesNotMatch(lines.join('\n'), /ik=|ck=|ikEsp|ckEsp/);
  } finally {
    ac.abort();
    await run.catch(() => {});
    await ue?.close();
    await scscf.close();
  }
});

test('issue 10 §5: inbound ESP drops are printed (one line per reason and SPI, rate-limited) and counted', async () => {
  const lines: string[] = [];
  const ac = new AbortController();
  const args = parsePcscfArgs({
    listen: `${LOOP}:0`,
    portC: '0',
    portS: '0',
    scscf: `${LOOP}:9`,
    mode: 'udp-enc-tun',
    encapPort: '0',
    json: true,
  });
  let drops: EspDropReporter | undefined;
  const run = runPcscf(args, { signal: ac.signal, write: (l) => lines.push(l), onDrops: (d) => (drops = d) });
  const sock = createSocket('udp4');
  try {
    for (let i = 0; i < 200 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const hello = JSON.parse(lines[0]!);
    // Forged ESP-in-UDP: SPI 0x00001234 three times, 0x00005678 once; no SA has either.
    const forged = (spi: number, seq: number) => {
      const b = Buffer.alloc(48, 0xab);
      b.writeUInt32BE(spi, 0);
      b.writeUInt32BE(seq, 4);
      return b;
    };
    for (const [spi, seq] of [
      [0x1234, 1],
      [0x1234, 2],
      [0x5678, 1],
      [0x1234, 3],
    ] as const) {
      await new Promise<void>((r) => sock.send(forged(spi, seq), hello.encap_port, LOOP, () => r()));
    }
    for (let i = 0; i < 200 && (drops?.counts['unknown-spi'] ?? 0) < 4; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(drops?.counts['unknown-spi'], 4, 'every drop counted');
    const dropLines = lines.map((l) => JSON.parse(l)).filter((e) => e.event === 'esp-dropped');
    assert.deepEqual(
      dropLines.map((e) => [e.reason, e.spi]),
      [
        ['unknown-spi', 0x1234],
        ['unknown-spi', 0x5678],
      ],
    );
    assert.equal(dropLines[0].from.address, LOOP);
  } finally {
    sock.close();
    ac.abort();
    await run.catch(() => {});
  }
});

test('EspDropReporter: a flood of new SPIs prints at most maxLinesPerWindow lines, then one summary per window', () => {
  let t = 0;
  const out: string[] = [];
  const r = new EspDropReporter({
    now: () => t,
    windowMs: 1000,
    maxLinesPerWindow: 3,
    emit: (e) => out.push(e.event === 'esp-dropped' ? `${e.drop.reason}:${e.drop.spi}` : `suppressed:${e.count}`),
  });
  for (let spi = 1; spi <= 100; spi++) r.note({ reason: 'icv', spi, from: { address: '192.0.2.1', port: 4500 } });
  t = 1500;
  r.note({ reason: 'replay', spi: 7, from: { address: '192.0.2.1', port: 4500 } });
  assert.deepEqual(out, ['icv:1', 'icv:2', 'icv:3', 'suppressed:97', 'replay:7']);
  assert.deepEqual(r.counts, { icv: 100, replay: 1 });
  assert.match(
    formatDrop({ reason: 'icv', spi: 0x1234, seq: 9, from: { address: '2001:db8::1', port: 4500 } }),
    /esp-dropped reason=icv spi=0x00001234 seq=9 from=\[2001:db8::1\]:4500$/,
  );
});
