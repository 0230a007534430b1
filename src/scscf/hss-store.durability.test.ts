// HssStore SQN durability with real processes: two writers on one file never share an SQN, and a
// writer killed with SIGKILL right after nextSqn returned leaves at least that SQN in the file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fromHex } from '../util/bytes.ts';
import { HssStore } from './hss-store.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const STORE_URL = pathToFileURL(fileURLToPath(new URL('./hss-store.ts', import.meta.url))).href;
const IMPI = 'alice@ims.example';

const dir = mkdtempSync(join(tmpdir(), 'imsec-hss-dur-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The child: open the store, print "ready", wait for "go" on stdin, then call nextSqn `count` times
// (forever when count is 0), writing each SQN synchronously as soon as nextSqn has returned (with a
// batch size > 1: as soon as the batch of them is committed).
const CHILD = join(dir, 'child.ts');
writeFileSync(
  CHILD,
  `import { writeSync } from 'node:fs';
import { HssStore } from ${JSON.stringify(STORE_URL)};
const [file, impi, countArg, batchArg] = process.argv.slice(2);
const count = Number(countArg);
const batch = Number(batchArg ?? '1');
const store = new HssStore(file!);
writeSync(1, 'ready\\n');
process.stdin.once('data', () => {
  for (let i = 0; count === 0 || i < count; i += batch) {
    // batch > 1: that many SQNs in one grouped commit, written out only once it is committed.
    if (batch > 1) store.beginSqnBatch();
    const got = [];
    for (let j = 0; j < batch; j++) got.push(store.nextSqn(impi!));
    if (batch > 1) store.commitSqnBatch();
    for (const n of got) writeSync(1, n + '\\n');
  }
  store.close();
  process.exit(0);
});
`,
);

function newStoreFile(name: string): string {
  const file = join(dir, name);
  const s = new HssStore(file);
  s.add({
    impi: IMPI,
    impus: ['sip:alice@ims.example'],
    k: new Uint8Array(16).fill(1),
    op: fromHex('cdc202d5123e20f62b6d676ac72cb318'),
    amf: fromHex('8000'),
  });
  s.close();
  return file;
}

interface Child {
  proc: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  sqns: number[];
  onSqn?: (n: number) => void;
  exited: Promise<number | string | null>;
}

function startChild(file: string, count: number, batch = 1): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, file, IMPI, String(count), String(batch)], { cwd: REPO });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const child: Child = { proc, sqns: [], ready: undefined!, exited: undefined! };
  child.exited = new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) process.stderr.write(stderr);
      resolve(signal ?? code);
    }),
  );
  child.ready = new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line === 'ready') return resolve();
      const n = Number(line);
      child.sqns.push(n);
      child.onSqn?.(n);
    });
    proc.on('exit', () => reject(new Error(`child exited before ready: ${stderr}`)));
  });
  return child;
}

/** Starts the children together and waits for them: every SQN they drew, checked unique (none handed out twice). */
async function raceChildren(kids: ReturnType<typeof startChild>[]) {
  await Promise.all(kids.map((c) => c.ready));
  for (const c of kids) c.proc.stdin.write('go\n');
  assert.deepEqual(await Promise.all(kids.map((c) => c.exited)), [0, 0]);
  const all = kids.flatMap((c) => c.sqns);
  assert.equal(all.length, 400);
  assert.equal(new Set(all).size, 400, 'no SQN handed out twice');
  return all;
}

test('two processes calling nextSqn 200 times each on one file never get the same SQN', async () => {
  const file = newStoreFile('two.sqlite');
  const kids = [startChild(file, 200), startChild(file, 200)];
  const all = await raceChildren(kids);
  for (const c of kids) {
    for (let i = 1; i < c.sqns.length; i++) assert.ok(c.sqns[i]! > c.sqns[i - 1]!, 'increasing within a process');
  }
  const s = new HssStore(file);
  assert.equal(s.get(IMPI)!.sqn, Math.max(...all), 'the file holds the highest SQN handed out');
  s.close();
});

test('grouped commits: a process committing 8 SQNs per batch and one committing each never share an SQN', async () => {
  const file = newStoreFile('batch.sqlite');
  const kids = [startChild(file, 200, 8), startChild(file, 200)];
  const all = await raceChildren(kids);
  for (const c of kids) for (let i = 1; i < c.sqns.length; i++) assert.ok(c.sqns[i]! > c.sqns[i - 1]!);
  const s = new HssStore(file);
  assert.equal(s.get(IMPI)!.sqn, Math.max(...all));
  s.close();
});

test('SIGKILL right after nextSqn returned: reopening shows at least that SQN', async () => {
  const file = newStoreFile('crash.sqlite');
  const c = startChild(file, 0);
  await c.ready;
  let seen = 0;
  c.onSqn = (n) => {
    seen = n;
    if (c.sqns.length === 25) c.proc.kill('SIGKILL');
  };
  c.proc.stdin.write('go\n');
  assert.equal(await c.exited, 'SIGKILL');
  assert.ok(c.sqns.length >= 25);
  const s = new HssStore(file);
  const stored = s.get(IMPI)!.sqn;
  assert.ok(stored >= seen, `stored ${stored} < last SQN the child reported ${seen}`);
  const next = s.nextSqn(IMPI);
  assert.ok(!c.sqns.includes(next) && next > seen, 'the next SQN is new');
  s.close();
});
