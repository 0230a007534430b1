// `--config FILE`: the example files load, flags override the file which overrides defaults, a bad
// file is exit 2 naming the key and what was expected, --print-config redacts secrets.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { InputError } from '../util/errors.ts';
import { formatConfig, intField, loadConfig } from './config.ts';
import { CoreConfigSchema, coreOptionsFromConfig } from './core.ts';
import { PcscfConfigSchema, pcscfArgsFromConfig } from './pcscf.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'imsec-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

test('examples/config/pcscf.yaml loads and becomes run arguments', () => {
  const c = loadConfig(PcscfConfigSchema, join(REPO, 'examples/config/pcscf.yaml'), {});
  const a = pcscfArgsFromConfig(c);
  assert.equal(a.address, '127.0.0.1');
  assert.equal(a.port, 5060);
  assert.equal(a.portC, 5064);
  assert.equal(a.portS, 5066);
  assert.deepEqual(a.scscf, { address: '127.0.0.1', port: 6060 });
  assert.equal(a.regAwaitAuthMs, 30_000);
  assert.deepEqual(
    a.policy.allow?.map((p) => `${p.alg}/${p.ealg}`),
    ['hmac-sha-1-96/aes-cbc', 'hmac-sha-1-96/null'],
  );
  assert.equal(a.json, true);
});

test('examples/config/core.yaml loads and becomes run options', () => {
  const c = coreOptionsFromConfig(loadConfig(CoreConfigSchema, join(REPO, 'examples/config/core.yaml'), {}));
  assert.deepEqual(c, {
    listen: '127.0.0.1:6060',
    domain: 'ims.example',
    db: '/var/lib/imsec/hss.sqlite',
    jsonEvents: true,
    regAwaitAuth: 240,
    challengeReRegister: true,
    defaultExpires: 600000,
    maxExpires: 600000,
    logLevel: 'info',
    hssSync: 'full',
  });
});

test('precedence: flags over the file over the defaults', () => {
  const f = file('p.yaml', 'listen: "127.0.0.1:5060"\nport-c: 5064\nport-s: 5066\nscscf: "127.0.0.1:6060"\nmode: trans\n');
  const fromFile = loadConfig(PcscfConfigSchema, f, {});
  assert.equal(fromFile.mode, 'trans', 'the file overrides the default');
  assert.equal(fromFile.encapPort, 4500, 'a key the file leaves out keeps its default');
  const flagged = loadConfig(PcscfConfigSchema, f, { mode: 'udp-enc-tun', portC: '6000', json: true });
  assert.equal(flagged.mode, 'udp-enc-tun');
  assert.equal(flagged.portC, 6000, 'flag strings are converted like file numbers');
  assert.equal(flagged.json, true);
  assert.equal(flagged.portS, 5066);
  // No file at all: flags and defaults.
  assert.equal(loadConfig(CoreConfigSchema, undefined, { domain: 'x.example' }).listen, '127.0.0.1:6060');
});

test('errors name the key (file) or the flag, and what was expected; all of them at once', () => {
  const f = file('bad.yaml', 'listen: "127.0.0.1"\nport-c: 70000\nport-s: five\nscscf: [1, 2]\nmode: tunnel\nprot-c: 1\n');
  let msg = '';
  try {
    loadConfig(PcscfConfigSchema, f, {});
  } catch (e) {
    assert.ok(e instanceof InputError);
    msg = e.message;
  }
  assert.match(msg, /bad\.yaml: listen: expected ADDR:PORT/);
  assert.match(msg, /bad\.yaml: port-c: expected a port 0\.\.65535/);
  assert.match(msg, /bad\.yaml: port-s: expected a port 0\.\.65535/);
  assert.match(msg, /bad\.yaml: scscf: expected ADDR:PORT .*quote it in YAML/);
  assert.match(msg, /bad\.yaml: mode: expected auto, udp-enc-tun or trans/);
  assert.match(msg, /bad\.yaml: unknown key prot-c/);
  assert.throws(
    () => loadConfig(PcscfConfigSchema, undefined, { listen: '127.0.0.1:1', scscf: '127.0.0.1:2', portS: '3' }),
    /--port-c \(or port-c: in --config\): required: a port/,
  );
  assert.throws(() => loadConfig(PcscfConfigSchema, f, { portC: '99999' }), /--port-c: expected a port/, 'a bad flag is named as the flag');
  assert.throws(
    () => loadConfig(CoreConfigSchema, file('c.yaml', 'listen: "1.2.3.4:5"\n'), {}),
    /--domain \(or domain: in --config\): required/,
  );
  assert.throws(() => loadConfig(CoreConfigSchema, file('y.yaml', 'domain: a\n  bad: [\n'), {}), /y\.yaml:\d+:\d+: not valid YAML/);
  assert.throws(() => loadConfig(CoreConfigSchema, file('d.yaml', 'domain: a\ndomain: b\n'), {}), /not valid YAML/, 'duplicate keys');
  assert.throws(() => loadConfig(CoreConfigSchema, file('l.yaml', '- a\n- b\n'), {}), /expected a mapping/);
  assert.throws(() => loadConfig(CoreConfigSchema, join(dir, 'missing.yaml'), {}), /--config: cannot read .*ENOENT/);
});

test('intField: numbers and digit strings in range; nothing else', () => {
  const s = intField(1, 10);
  assert.equal(s.parse(3), 3);
  assert.equal(s.parse('10'), 10);
  for (const bad of [0, 11, 1.5, '1e1', ' 3', '-1', true, null]) assert.equal(s.safeParse(bad).success, false, JSON.stringify(bad));
});

test('formatConfig: file-style keys, URL passwords and named secrets redacted, loadable again', () => {
  const text = formatConfig({ db: 'postgres://imsec:s3cret@db.example/hss', storeKey: 'abcd', portC: 5 }, ['storeKey']);
  assert.ok(!text.includes('s3cret') && !text.includes('abcd'), text);
  assert.deepEqual(parse(text), { db: 'postgres://imsec:[redacted]@db.example/hss', 'store-key': '[redacted]', 'port-c': 5 });
  const schema = z.strictObject({ portC: intField(0, 9) });
  assert.deepEqual(loadConfig(schema, file('again.yaml', formatConfig({ portC: 5 })), {}), { portC: 5 });
});

function imsec(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [join(REPO, 'bin/imsec.mjs'), ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
}

test('the commands: --print-config shows the effective settings; a bad file exits 2 with the key', () => {
  const p = imsec(['pcscf', '--config', join(REPO, 'examples/config/pcscf.yaml'), '--port-c', '7000', '--print-config']);
  assert.equal(p.status, 0, p.stderr);
  const shown = parse(p.stdout) as Record<string, unknown>;
  assert.equal(shown['port-c'], 7000, 'the flag wins');
  assert.equal(shown['port-s'], 5066, 'the file fills the rest');
  assert.equal(shown['backend'], 'userspace');

  const c = imsec(['core', '--config', join(REPO, 'examples/config/core.yaml'), '--print-config'], {
    IMSEC_HSS_DB: 'postgres://u:hunter2@127.0.0.1/hss',
  });
  assert.equal(c.status, 0, c.stderr);
  assert.ok(!c.stdout.includes('hunter2'), 'the password is redacted');
  assert.match(c.stdout, /db: postgres:\/\/u:\[redacted\]@127\.0\.0\.1\/hss/);

  const bad = imsec(['core', '--config', file('bad-core.yaml', 'domain: ims.example\nreg-await-auth: -5\n')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad-core\.yaml: reg-await-auth: expected seconds 1\.\.999999999/);
});

test("examples/config/load.yaml loads through the load command's option schema; keys redacted; unknown keys refused", async () => {
  const { Command } = await import('commander');
  const { registerLoad } = await import('./load.ts');
  const program = new Command();
  registerLoad(program);
  const load = program.commands.find((c) => c.name() === 'load')!;
  const { optionsSchema } = await import('./config.ts');
  const schema = optionsSchema(load);
  const c = loadConfig(schema, join(REPO, 'examples/config/load.yaml'), { rate: '300' }) as Record<string, unknown>;
  assert.equal(c['rate'], '300', 'the flag wins');
  assert.equal(c['count'], '1000', 'file numbers become flag text for the load parser');
  assert.equal(c['messageRate'], '50');
  assert.equal(c['deregister'], true);
  assert.deepEqual(c['offer'], ['hmac-sha-1-96/aes-cbc', 'hmac-sha-1-96/null']);
  assert.equal(c['pcscfEncapPort'], '4500');
  assert.equal(c['t1'], undefined, 'no default, not given');
  assert.throws(() => loadConfig(schema, file('l2.yaml', 'rat: 5\n'), {}), /unknown key rat/);
  const p = imsec(['load', '--config', join(REPO, 'examples/config/load.yaml'), '--print-config']);
  assert.equal(p.status, 0, p.stderr);
  assert.ok(!p.stdout.includes('465b5ce8') && !p.stdout.includes('cd63cb71'), 'K and OPc redacted');
  assert.equal((parse(p.stdout) as Record<string, unknown>)['k'], '[redacted]');
});
