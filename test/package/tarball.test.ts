// The package as a user gets it: `npm pack`, the tarball installed into an empty project, and from
// there the `imsec` command, the library entry points from a plain .mjs file (no TypeScript
// loader: tsx is not installed there), their .d.ts under `moduleResolution: nodenext`, and every
// script of examples/. Slow (npm install builds better-sqlite3 and the native addon from source
// when no prebuilt binary can be fetched: about 2 minutes here), so one install serves every check.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: Record<string, unknown>;
};
const NPM_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
delete NPM_ENV.NODE_TEST_CONTEXT;
delete NPM_ENV.NODE_OPTIONS; // the test runner's tsx loader must not leak into the user's project

/** `imsec aka vector` inputs of TS 35.208 §4.3 Test Set 1 (test-vectors §1). */
const TEST_SET_1 = [
  '--k',
  '465b5ce8b199b49faa5f0a2ee238a6bc',
  '--op',
  'cdc202d5123e20f62b6d676ac72cb318',
  '--sqn',
  'ff9bb4d0b607',
  '--amf',
  'b9b9',
  '--rand',
  '23553cbe9637a89d218ae64dae47bf35',
];

let dir = '';
let project = '';
let tarball = '';
let packedFiles: string[] = [];

function run(cmd: string, args: string[], cwd: string, timeoutMs = 60_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: NPM_ENV, timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}
const ok = (r: SpawnSyncReturns<string>, what: string) =>
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
const node = (args: string[], timeoutMs?: number) => run(process.execPath, args, project, timeoutMs);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'imsec-pack-'));
  project = join(dir, 'project');
  // dist/ as the sources are now (a no-op when `make test` has just built it); then pack without
  // lifecycle scripts, so this test never rebuilds dist/ under the feet of tests running beside it.
  ok(run(process.execPath, ['scripts/build.mjs'], ROOT, 300_000), 'npm run build');
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT, 120_000);
  ok(pack, 'npm pack');
  const info = (JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  tarball = join(dir, info.filename);
  packedFiles = info.files.map((f) => f.path).sort();

  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'imsec-tarball-check', version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
  // From the npm cache when it has everything, else the registry (CI reaches it).
  ok(
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], project, 900_000),
    'npm install <tarball>',
  );
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the tarball holds dist/ (JS + .d.ts), bin, the native addon sources, README, LICENSE: no sources, tests or fixtures', () => {
  for (const f of [
    'package.json',
    'README.md',
    'LICENSE',
    'bin/imsec.mjs',
    'native/imsec_native.c',
    'native/binding.gyp',
    'scripts/build-native.mjs',
    'dist/cli/main.js',
    'dist/cli/imsec.js',
    'dist/aka/index.js',
    'dist/aka/index.d.ts',
  ]) {
    assert.ok(packedFiles.includes(f), `${f} is in the tarball`);
  }
  const stray = packedFiles.filter(
    (f) =>
      !/^(dist\/.*\.(js|d\.ts)|dist\/\.build-stamp|bin\/imsec\.mjs|native\/(imsec_native\.c|binding\.gyp)|scripts\/build-native\.mjs|package\.json|README\.md|LICENSE)$/.test(
        f,
      ),
  );
  assert.deepEqual(stray, [], 'nothing else is shipped');
  assert.deepEqual(
    packedFiles.filter((f) => /\.test\.|testdata|(^|\/)_fake|(^|\/)_test/.test(f)),
    [],
    'no test files',
  );
  for (const [entry, target] of Object.entries(PKG.exports)) {
    if (typeof target === 'string') continue;
    const t = target as { types: string; default: string };
    assert.ok(packedFiles.includes(t.default.slice(2)), `${entry}: ${t.default} shipped`);
    assert.ok(packedFiles.includes(t.types.slice(2)), `${entry}: ${t.types} shipped`);
  }
});

test('installed: no TypeScript loader, the native addon built by postinstall', () => {
  const installed = join(project, 'node_modules', PKG.name);
  assert.ok(existsSync(join(installed, 'dist', 'cli', 'main.js')));
  assert.ok(!existsSync(join(installed, 'src')), 'no sources installed');
  assert.ok(!existsSync(join(project, 'node_modules', 'tsx')), 'tsx is a devDependency: not installed');
  assert.ok(!existsSync(join(project, 'node_modules', 'typescript')), 'typescript is not installed');
  // postinstall (scripts/build-native.mjs) builds it where a compiler, make and python3 exist, as on CI.
  const canBuild = ['cc', 'make', 'python3'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
  if (canBuild)
    assert.ok(existsSync(join(installed, 'native', 'build', 'Release', 'imsec_native.node')), 'the xfrm addon was built at install');
});

test('imsec --version and imsec aka vector (TS 35.208 Test Set 1) from the installed bin', () => {
  const bin = join(project, 'node_modules', '.bin', 'imsec');
  const v = run(bin, ['--version'], project);
  ok(v, 'imsec --version');
  assert.equal(v.stdout.trim(), PKG.version);
  const av = run(bin, ['aka', 'vector', ...TEST_SET_1, '--json'], project);
  ok(av, 'imsec aka vector');
  // test-vectors §1 (TS 35.208 §4.3 Test Set 1).
  assert.deepEqual(JSON.parse(av.stdout), {
    rand: '23553cbe9637a89d218ae64dae47bf35',
    autn: '55f328b43577b9b94a9ffac354dfafb3',
    xres: 'a54211d5e3ba50bf',
    ck: 'b40ba9a3c58b2a05bbf0d987b21bf8cb',
    ik: 'f769bcd751044604127672711c6d3441',
    ak: 'aa689c648370',
    mac_a: '4a9ffac354dfafb3',
    opc: 'cd63cb71954a9f4e48a5994e37a02baf',
    nonce: 'I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=',
  });
});

test('the installed bin starts from the start-up bundle: commander inlined, command groups still lazy', () => {
  // A resolve hook that lists every module the process loads (what issue 14's start-up budget is spent on).
  const hook = `data:text/javascript,${encodeURIComponent(
    "import{register}from'node:module';register('data:text/javascript,'+encodeURIComponent('export async function resolve(s,c,n){const r=await n(s,c);process.stderr.write(\"LOADED \"+r.url+\"\\\\n\");return r}'))",
  )}`;
  const r = node(['--import', hook, join(project, 'node_modules', 'imsec', 'bin', 'imsec.mjs'), 'aka', 'vector', ...TEST_SET_1]);
  ok(r, 'imsec aka vector with a resolve hook');
  const loaded = [...r.stderr.matchAll(/^LOADED (.*)$/gm)].map((m) => m[1]!);
  assert.ok(
    loaded.some((u) => u.endsWith('/dist/cli/imsec.js')),
    `the bundle ran:\n${loaded.join('\n')}`,
  );
  assert.deepEqual(
    loaded.filter((u) => u.includes('/node_modules/commander/')),
    [],
    'commander comes inlined, not through the CommonJS loader',
  );
  assert.ok(
    loaded.some((u) => u.endsWith('/dist/cli/aka.js')),
    'the aka group loads from the per-module build',
  );
  assert.deepEqual(
    loaded.filter((u) => /\/dist\/cli\/(pcscf|ue|demo|load|core)\.js$/.test(u)),
    [],
    'other command groups are not loaded',
  );
});

test('imsec/aka, imsec/secagree, imsec/ipsec and imsec/esp from a plain .mjs: a Milenage vector and an ESP round trip', () => {
  writeFileSync(
    join(project, 'check.mjs'),
    `
import assert from 'node:assert/strict';
import { computeOpc, milenage } from 'imsec/aka';
import { parseSecurityHeaderOrThrow, negotiate } from 'imsec/secagree';
import { expandKeys } from 'imsec/ipsec';
import { IPPROTO_UDP, createInbound, createOutbound } from 'imsec/esp';
const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');
const k = hex('465b5ce8b199b49faa5f0a2ee238a6bc');
const opc = computeOpc(k, hex('cdc202d5123e20f62b6d676ac72cb318'));
assert.equal(toHex(opc), 'cd63cb71954a9f4e48a5994e37a02baf');
const m = milenage(k, opc, hex('23553cbe9637a89d218ae64dae47bf35'), hex('ff9bb4d0b607'), hex('b9b9'));
assert.equal(toHex(m.macA), '4a9ffac354dfafb3');
assert.equal(toHex(m.macS), '01cfaf9ec4e871e9');
assert.equal(toHex(m.res), 'a54211d5e3ba50bf');
assert.equal(toHex(m.ck), 'b40ba9a3c58b2a05bbf0d987b21bf8cb');
assert.equal(toHex(m.ik), 'f769bcd751044604127672711c6d3441');
assert.equal(toHex(m.ak), 'aa689c648370');
const parsed = parseSecurityHeaderOrThrow('ipsec-3gpp; alg=hmac-sha-1-96; ealg=aes-cbc; spi-c=1111; spi-s=2222; port-c=5062; port-s=5064');
const [mech] = parsed;
assert.equal(mech.alg, 'hmac-sha-1-96');
assert.equal(mech.spiC, 1111);
assert.equal(typeof negotiate, 'function');
const keys = expandKeys(m.ik, m.ck, 'hmac-sha-1-96', 'aes-cbc');
const sa = { spi: 0x2000, alg: 'hmac-sha-1-96', ealg: 'aes-cbc', keys };
const out = createOutbound(sa);
const inn = createInbound(sa);
const payload = new TextEncoder().encode('REGISTER sip:ims.example.org SIP/2.0');
const wire = out.seal(payload, IPPROTO_UDP);
const got = inn.open(wire);
assert.ok(got.ok, 'the packet opens');
assert.equal(got.seq, 1);
assert.equal(got.nextHeader, IPPROTO_UDP);
assert.deepEqual(Buffer.from(got.payload), Buffer.from(payload));
assert.deepEqual(inn.open(wire), { ok: false, drop: 'replay', seq: 1 });
console.log('library ok');
`,
  );
  const r = node(['check.mjs']);
  ok(r, 'check.mjs');
  assert.equal(r.stdout.trim(), 'library ok');
});

test('the .d.ts resolve through the `types` conditions (tsc, moduleResolution nodenext)', () => {
  writeFileSync(
    join(project, 'typed.ts'),
    `
import { milenage, type MilenageOutput } from 'imsec/aka';
import { createOutbound, type EspOutbound } from 'imsec/esp';
import { Ue, type UeOptions } from 'imsec/ue';
import { Pcscf } from 'imsec/pcscf';
import { Scscf, HssStore } from 'imsec/core';
import { UserspaceBackend, type IpsecBackend } from 'imsec/backends';
const out: MilenageOutput = milenage(new Uint8Array(16), new Uint8Array(16), new Uint8Array(16), new Uint8Array(6), new Uint8Array(2));
const o: EspOutbound | undefined = undefined;
const u: Partial<UeOptions> = { impi: 'x' };
// @ts-expect-error: res is a Uint8Array, and the types say so
const wrong: string = out.res;
export { out, o, u, wrong, createOutbound, Ue, Pcscf, Scscf, HssStore, UserspaceBackend };
export type { IpsecBackend };
`,
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      files: ['typed.ts'],
    }),
  );
  const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  ok(node([tsc, '-p', 'tsconfig.json'], 120_000), 'tsc against the installed .d.ts');
});

test('every script of examples/ runs against the installed package', () => {
  const examples = readdirSync(join(ROOT, 'examples'))
    .filter((f) => f.endsWith('.mjs'))
    .sort();
  assert.ok(examples.length >= 3, 'three examples');
  for (const f of examples) {
    copyFileSync(join(ROOT, 'examples', f), join(project, f));
    const r = node([f], 60_000);
    ok(r, `examples/${f}`);
  }
});
