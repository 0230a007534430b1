// SipHeaders' set/get/getAll/clone against a naive model (one array of lines, RFC 3261 §7.3.1
// splitting by splitTopLevel): the fast paths (one value over at most one line replaced in place,
// a value without a comma read without splitting) must give exactly what the general path gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SipHeaders, SipRequest, SipResponse, canonicalHeaderName, isListHeader } from './message.ts';
import { splitTopLevel } from './_syntax.ts';

type Line = [string, string];
const NAMES = ['Supported', 'supported', 'k', 'Max-Forwards', 'Via', 'v', 'Route', 'X-Custom', 'Authorization', 'To'];
const name = fc.constantFrom(...NAMES);
const value = fc.constantFrom('a', ' b ', 'c, d', '<sip:x;a=1,2>, e', '"q, r"', ' ', '', ',', 'f ,  ', 'Digest a=1, b=2');
const lines = fc.array(fc.tuple(name, value), { maxLength: 8 });

const lower = (n: string) => canonicalHeaderName(n).toLowerCase();

/** The naive model: the general path, written out. */
function modelSet(ls: Line[], n: string, v: string | string[]): Line[] {
  const vs = typeof v === 'string' ? [v] : v;
  const at = ls.findIndex(([x]) => lower(x) === lower(n));
  const rest = ls.filter(([x]) => lower(x) !== lower(n));
  const added: Line[] = vs.map((x) => [canonicalHeaderName(n), x]);
  const pos = at < 0 ? rest.length : at;
  return [...rest.slice(0, pos), ...added, ...rest.slice(pos)];
}
function modelGetAll(ls: Line[], n: string): string[] {
  const vals = ls.filter(([x]) => lower(x) === lower(n)).map(([, v]) => v);
  return isListHeader(n) ? vals.flatMap(splitTopLevel) : vals;
}
function modelGet(ls: Line[], n: string): string | undefined {
  for (const [x, v] of ls) {
    if (lower(x) !== lower(n)) continue;
    if (!isListHeader(n)) return v;
    const first = splitTopLevel(v)[0];
    if (first !== undefined) return first;
  }
  return undefined;
}
const shown = (h: SipHeaders): Line[] => h.entries().map((f) => [f.name, f.value]);
const canon = (ls: Line[]): Line[] => ls.map(([n, v]) => [canonicalHeaderName(n), v]);

test('SipHeaders set/get/getAll agree with the naive model (one value or several, 0, 1 or more lines)', () => {
  fc.assert(
    fc.property(lines, name, fc.oneof(value, fc.array(value, { maxLength: 3 })), name, (ls, n, v, probe) => {
      const h = new SipHeaders(ls);
      assert.deepEqual(h.get(probe), modelGet(canon(ls), probe));
      assert.deepEqual(h.getAll(probe), modelGetAll(canon(ls), probe));
      const c = h.clone();
      h.set(n, v);
      const want = modelSet(canon(ls), n, v);
      assert.deepEqual(shown(h), want);
      assert.deepEqual(h.get(probe), modelGet(want, probe));
      assert.deepEqual(h.getAll(probe), modelGetAll(want, probe));
      // The clone taken before is untouched by the set.
      assert.deepEqual(shown(c), canon(ls));
    }),
    { numRuns: 500 },
  );
});

test('set with CR/LF in the value throws and leaves the lines as they were', () => {
  const h = new SipHeaders([['Max-Forwards', '70']]);
  assert.throws(() => h.set('Max-Forwards', '69\r\nX-Evil: 1'));
  assert.deepEqual(shown(h), [['Max-Forwards', '70']]);
});

test('a clone copies a body (an empty one may be shared: it cannot be written)', () => {
  const body = new TextEncoder().encode('v=0');
  const req = new SipRequest('MESSAGE', 'sip:a@b', new SipHeaders(), body);
  const c = req.clone();
  assert.notEqual(c.body, req.body);
  c.body[0] = 0x41;
  assert.equal(req.body[0], 0x76);
  const res = new SipResponse(200, 'OK');
  assert.equal(res.clone().body.length, 0);
  assert.equal(new SipRequest('REGISTER', 'sip:b').clone().body.length, 0);
});
