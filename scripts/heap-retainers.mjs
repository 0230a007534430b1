#!/usr/bin/env node
// Where the bytes go, by holder: the objects of AFTER that BEFORE did not have (node ids are stable
// between snapshots of one process) grouped by what holds them — "Holder.edge → what" (the first
// retainer that is not an array or internal node: a Map's table, an object's property store) — with
// bytes and objects per unit. Sliced strings are reported with the parent strings they keep alive.
//   node scripts/heap-retainers.mjs BEFORE.heapsnapshot AFTER.heapsnapshot N [--top 60]
import { readFileSync } from 'node:fs';

const [a, b, nArg] = process.argv.slice(2).filter((x) => !x.startsWith('--'));
const top = process.argv.includes('--top') ? Number(process.argv[process.argv.indexOf('--top') + 1]) : 60;
const n = Number(nArg ?? 1);

function load(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const m = s.snapshot.meta;
  return { s, nf: m.node_fields, ef: m.edge_fields, nt: m.node_types[0], et: m.edge_types[0] };
}
const before = load(a);
const ids = new Set();
{
  const { s, nf } = before;
  const w = nf.length,
    iId = nf.indexOf('id');
  for (let i = 0; i < s.nodes.length; i += w) ids.add(s.nodes[i + iId]);
}
before.s = null;
const { s, nf, ef, nt, et } = load(b);
const W = nf.length,
  EW = ef.length;
const [iType, iName, iId, iSize, iEc] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((x) => nf.indexOf(x));
const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((x) => ef.indexOf(x));
const N = s.nodes.length / W;
const firstEdge = new Uint32Array(N + 1);
for (let i = 0; i < N; i++) firstEdge[i + 1] = firstEdge[i] + s.nodes[i * W + iEc] * EW;
// Retainers: for each node, the list of (from, edge index).
const retCount = new Uint32Array(N);
for (let e = 0; e < s.edges.length; e += EW) retCount[s.edges[e + eTo] / W]++;
const retStart = new Uint32Array(N + 1);
for (let i = 0; i < N; i++) retStart[i + 1] = retStart[i] + retCount[i];
const retFrom = new Uint32Array(retStart[N]);
const retEdge = new Uint32Array(retStart[N]);
const fill = retStart.slice();
for (let i = 0; i < N; i++)
  for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EW) {
    const t = s.edges[e + eTo] / W;
    retFrom[fill[t]] = i;
    retEdge[fill[t]++] = e;
  }
const type = (i) => nt[s.nodes[i * W + iType]];
const name = (i) => s.strings[s.nodes[i * W + iName]];
const label = (i) => {
  const t = type(i);
  return t === 'object' || t === 'closure' || t === 'native' ? name(i) : `(${t})`;
};
const edgeName = (e) => {
  const t = et[s.edges[e + eType]];
  const v = s.edges[e + eName];
  return t === 'element' || t === 'hidden' ? `[${t}]` : s.strings[v];
};
const passThrough = (i) => {
  const t = type(i);
  const nm = name(i);
  return t === 'array' || t === 'hidden' || (t === 'object' && (nm === 'Array' || nm === 'system / Context')) || t === 'code';
};
// The holder of node i: walk up through arrays / internal nodes (first non-weak retainer) a few steps.
function holder(i) {
  let cur = i,
    path = '';
  for (let depth = 0; depth < 4; depth++) {
    let best = -1,
      bestE = -1;
    for (let r = retStart[cur]; r < retStart[cur + 1]; r++) {
      const e = retEdge[r];
      if (et[s.edges[e + eType]] === 'weak') continue;
      best = retFrom[r];
      bestE = e;
      break;
    }
    if (best < 0) return `(none)${path}`;
    const en = edgeName(bestE);
    if (!passThrough(best)) return `${label(best)}.${en}${path}`;
    path = `/${label(best)}${en === '[element]' || en === '[hidden]' ? '' : '.' + en}${path}`;
    cur = best;
  }
  return `…${path}`;
}
const groups = new Map();
let total = 0;
const slicedParents = new Map();
for (let i = 0; i < N; i++) {
  if (ids.has(s.nodes[i * W + iId])) continue;
  const size = s.nodes[i * W + iSize];
  total += size;
  const key = `${holder(i)} → ${label(i)}`;
  const g = groups.get(key) ?? { n: 0, bytes: 0 };
  g.n++;
  g.bytes += size;
  groups.set(key, g);
  if (type(i) === 'sliced string') {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EW) {
      if (s.strings[s.edges[e + eName]] !== 'parent') continue;
      const p = s.edges[e + eTo] / W;
      const k = `${holder(i)}`;
      const sp = slicedParents.get(k) ?? { slices: 0, parents: new Set(), bytes: 0 };
      sp.slices++;
      if (!sp.parents.has(p)) {
        sp.parents.add(p);
        sp.bytes += s.nodes[p * W + iSize];
      }
      slicedParents.set(k, sp);
    }
  }
}
console.log(`new objects ${(total / 1e6).toFixed(1)} MB, ${(total / n).toFixed(0)} B per unit (N = ${n})`);
console.log('  bytes/unit  objs/unit  holder.edge → what');
for (const [k, g] of [...groups].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, top))
  console.log(`${(g.bytes / n).toFixed(0).padStart(12)} ${(g.n / n).toFixed(2).padStart(10)}  ${k}`);
if (slicedParents.size) {
  console.log('sliced strings: holder, slices/unit, distinct parents/unit, parent bytes/unit');
  for (const [k, v] of slicedParents)
    console.log(`  ${k}  ${(v.slices / n).toFixed(2)}  ${(v.parents.size / n).toFixed(2)}  ${(v.bytes / n).toFixed(0)}`);
}
