// The loggers: JSON records, human lines, keys censored by name and bytes never printed, drops
// summarised once per reason per interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, DropLog, prettyRecord } from './log.ts';

const KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const HEX = Buffer.from(KEY).toString('hex');

test('JSON records; key fields censored at any depth we log; byte arrays never printed', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'trace', json: true, write: (l) => lines.push(l) });
  log.info({ event: 'x', ck: HEX, keys: { ikEsp: HEX }, sa: { spi: 7, key: HEX }, blob: KEY, nested: { deeper: { raw: KEY } } }, 'hello');
  log.debug({ event: 'y', k: HEX, opc: HEX, xres: HEX });
  assert.equal(lines.length, 2);
  const r = JSON.parse(lines[0]!);
  assert.equal(r.level, 30);
  assert.equal(r.event, 'x');
  assert.equal(r.msg, 'hello');
  assert.equal(r.sa.spi, 7);
  assert.equal(r.ck, '[redacted]');
  assert.equal(r.blob, '[16 bytes]');
  assert.ok(!lines.join('\n').includes(HEX), lines.join('\n'));
  assert.ok(!lines.join('\n').includes(Buffer.from(KEY).toString('base64')));
  assert.ok(!/160,161/.test(lines.join('\n')), 'no byte lists either');
});

test('levels: below the level nothing is written', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', json: true, write: (l) => lines.push(l) });
  log.info('quiet');
  log.warn('loud');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).msg),
    ['loud'],
  );
});

test('human lines: time, level when not info, event, k=v, addresses as ADDR:PORT, message last', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', json: false, write: (l) => lines.push(l) });
  log.warn({ event: 'rejected', reason: 'r', from: { address: '::1', port: 5 } }, 'why');
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} WARN rejected reason=r from=\[::1\]:5: why$/);
  assert.equal(prettyRecord({ time: '2024-01-01T01:02:03.456Z', level: 30, event: 'e', a: [1, 2] }), '01:02:03.456 e a=1,2');
});

test('DropLog: a flood is one record per reason per interval, with the count', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', json: true, write: (l) => lines.push(l) });
  let polls = 0;
  const d = new DropLog(log, 60_000, (x) => x.note('esp replay', polls++ === 0 ? 3 : 0));
  for (let i = 0; i < 10_000; i++) d.note('unprotected', 1, { port: 5064 });
  assert.equal(lines.length, 0, 'nothing per packet');
  d.flush();
  const recs = lines.map((l) => JSON.parse(l));
  assert.deepEqual(recs.map((r) => [r.event, r.reason, r.count]).sort(), [
    ['dropped', 'esp replay', 3],
    ['dropped', 'unprotected', 10_000],
  ]);
  assert.equal(recs.find((r) => r.reason === 'unprotected').port, 5064);
  d.close();
  assert.equal(lines.length, 2, 'a quiet interval logs nothing');
});
