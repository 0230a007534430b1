// Where a load run's UEs get K and OPc: one pair for all, each subscriber's from an HSS store file
// (the one `imsec core` serves), or a CSV `impi,k,opc` (hex). Keys stay bytes; errors never quote them.
import { readFileSync } from 'node:fs';
import { HssStore } from '../scscf/hss-store.ts';
import { fromHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';

export interface UeKeys {
  readonly k: Uint8Array;
  readonly opc: Uint8Array;
}

export interface KeySource {
  /** The keys of `impi`; an InputError when the source has none. */
  keysOf(impi: string): UeKeys;
  close(): void;
}

export function commonKeys(keys: UeKeys): KeySource {
  return { keysOf: () => keys, close: () => {} };
}

/** Per-subscriber keys read from the HSS store (read as each UE starts: no copy of the table). */
export function storeKeys(file: string): KeySource {
  let store: HssStore;
  try {
    store = new HssStore(file);
  } catch (e) {
    throw new InputError(`--keys-db: cannot open ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return {
    keysOf(impi) {
      const s = store.get(impi);
      if (!s) throw new InputError(`--keys-db: no subscriber ${impi} in ${file}`);
      return { k: s.k, opc: s.opc };
    },
    close: () => store.close(),
  };
}

/** `impi,k,opc` per line (a header line and # comments are skipped). */
export function csvKeys(file: string): KeySource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`--keys-csv: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const map = new Map<string, UeKeys>();
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#') || (i === 0 && /^impi\s*,/i.test(l))) return;
    const [impi, k, opc, ...rest] = l.split(',').map((x) => x.trim());
    const hex = (x: string | undefined) => x !== undefined && /^[0-9a-fA-F]{32}$/.test(x);
    if (!impi || !hex(k) || !hex(opc) || rest.length)
      throw new InputError(`--keys-csv: ${file} line ${i + 1}: expected impi,k,opc with 32 hex digits each (values not shown)`);
    map.set(impi, { k: fromHex(k!), opc: fromHex(opc!) });
  });
  return {
    keysOf(impi) {
      const keys = map.get(impi);
      if (!keys) throw new InputError(`--keys-csv: no line for ${impi} in ${file}`);
      return keys;
    },
    close: () => map.clear(),
  };
}
