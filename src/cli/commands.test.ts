// The command router (commands.ts): each group's table entry matches what its module declares, a
// command line loads only the group it names, and `--version` / `--help` work without loading any.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { COMMAND_GROUPS, buildProgram, groupOf, packageVersion } from './commands.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

test('each group registers exactly the command the table names, with the same description', async () => {
  assert.equal(new Set(COMMAND_GROUPS.map((g) => g.name)).size, COMMAND_GROUPS.length, 'names are unique');
  for (const g of COMMAND_GROUPS) {
    const program = new Command();
    (await g.load())(program);
    assert.deepEqual(
      program.commands.map((c) => c.name()),
      [g.name],
      `${g.name}: one top-level command`,
    );
    assert.equal(program.commands[0]!.description(), g.description, `${g.name}: description in COMMAND_GROUPS`);
  }
});

test('groupOf: the first word, or the word after `help`; nothing for options or unknown words', () => {
  assert.equal(groupOf(['aka', 'vector', '--k', 'x'])?.name, 'aka');
  assert.equal(groupOf(['help', 'pcscf'])?.name, 'pcscf');
  assert.equal(groupOf(['--version']), undefined);
  assert.equal(groupOf(['akaa']), undefined);
  assert.equal(groupOf([]), undefined);
});

test('buildProgram: a named group is fully declared (options and subcommands), the others are not loaded', async () => {
  const p = await buildProgram(['aka', 'vector']);
  assert.deepEqual(
    p.commands.map((c) => c.name()),
    ['aka'],
  );
  const vector = p.commands[0]!.commands.find((c) => c.name() === 'vector');
  assert.ok(vector, 'aka vector declared');
  assert.deepEqual(vector.options.map((o) => o.long).sort(), ['--amf', '--json', '--k', '--op', '--opc', '--rand', '--sqn']);
  const all = await buildProgram(['--help']);
  assert.deepEqual(
    all.commands.map((c) => c.name()),
    COMMAND_GROUPS.map((g) => g.name),
  );
});

test("--version prints package.json's version; --help lists every group; a group's help is complete", () => {
  assert.equal(packageVersion(), VERSION);
  const run = (...args: string[]) => spawnSync(process.execPath, ['bin/imsec.mjs', ...args], { cwd: ROOT, encoding: 'utf8' });
  const v = run('--version');
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), VERSION);
  const h = run('--help');
  assert.equal(h.status, 0, h.stderr);
  for (const g of COMMAND_GROUPS) assert.match(h.stdout, new RegExp(`^  ${g.name} `, 'm'), `--help lists ${g.name}`);
  const ph = run('pcscf', '--help');
  assert.equal(ph.status, 0, ph.stderr);
  for (const opt of ['--listen', '--port-c', '--port-s', '--scscf', '--backend', '--json'])
    assert.ok(ph.stdout.includes(opt), `pcscf --help shows ${opt}`);
  const bad = run('akaa');
  assert.equal(bad.status, 2, 'an unknown command is bad input');
  assert.match(bad.stderr, /unknown command 'akaa'/);
});
