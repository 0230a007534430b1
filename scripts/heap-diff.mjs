#!/usr/bin/env node
// Where the bytes go: compares two V8 heap snapshots (e.g. the P-CSCF's before and after N
// registrations, npm run bench:load -- --heap-snapshot DIR) by constructor / node type and prints
// the growth, biggest first, with bytes and objects per unit when N is given.
//   node scripts/heap-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [N] [--top 40]
import { readFileSync } from 'node:fs';

function tally(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = f.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((x) => f.indexOf(x));
  const out = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const name = snap.strings[nodes[i + iName]];
    // Objects by constructor; strings, code, arrays etc. by node type (their "name" is their content).
    const key = type === 'object' || type === 'closure' || type === 'native' ? `${name} (${type})` : `(${type})`;
    const e = out.get(key) ?? { n: 0, bytes: 0 };
    e.n++;
    e.bytes += nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

const [a, b, nArg] = process.argv.slice(2).filter((x) => !x.startsWith('--'));
const top = process.argv.includes('--top') ? Number(process.argv[process.argv.indexOf('--top') + 1]) : 40;
if (!a || !b) {
  console.error('usage: node scripts/heap-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [N] [--top 40]');
  process.exit(2);
}
const n = Number(nArg ?? 1) || 1;
const before = tally(a);
const after = tally(b);
const rows = [];
let total = 0;
for (const [k, v] of after) {
  const o = before.get(k) ?? { n: 0, bytes: 0 };
  const d = { key: k, n: v.n - o.n, bytes: v.bytes - o.bytes };
  total += d.bytes;
  rows.push(d);
}
rows.sort((x, y) => y.bytes - x.bytes);
console.log(`heap growth ${(total / 1024 / 1024).toFixed(1)} MB${n > 1 ? `, ${Math.round(total / n)} B per unit (N = ${n})` : ''}`);
console.log('  bytes/unit  objs/unit  what');
for (const r of rows.slice(0, top))
  console.log(`${String(Math.round(r.bytes / n)).padStart(12)} ${(r.n / n).toFixed(2).padStart(10)}  ${r.key}`);
