#!/usr/bin/env node
// The imsec command. Runs the compiled CLI in dist/ when there is one that is up to date, else the
// TypeScript sources through tsx (a checkout being edited, or not built yet):
// - installed package (no src/ beside dist/): dist/, always;
// - a checkout: dist/ when scripts/dist-fresh.mjs says it was built from the sources as they are
//   now (`npm run build`, which `make demo` / `make test` run), else src/ through tsx.
// IMSEC_FROM_SOURCE=1 forces the sources.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const inCheckout = existsSync(new URL('src/cli/main.ts', root));

async function distUsable() {
  if (process.env.IMSEC_FROM_SOURCE === '1' && inCheckout) return false;
  if (!inCheckout) return true;
  const { distIsFresh } = await import('../scripts/dist-fresh.mjs');
  return distIsFresh(fileURLToPath(root));
}

if (await distUsable()) {
  await import('../dist/cli/imsec.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
