// `imsec subscriber add|list|remove`: provisioning of the embedded HSS store (scscf/hss-store.ts).
// Output never carries K or OPc; list shows IMPI, IMPUs, AMF and SQN (SEQ ‖ IND, 12 hex digits).
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { HssStore, type Subscriber, sqnHex } from '../scscf/hss-store.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { ImsecError, InputError } from '../util/errors.ts';
import { EXIT_CHECK_FAILED, printResult, printTable } from './output.ts';

const DEFAULT_DB = './imsec-hss.sqlite';
const defaultDb = () => process.env['IMSEC_HSS_DB'] || DEFAULT_DB;

/** Opens the store; `mustExist` for commands that should not create an empty store by accident. */
function openStore(file: string, mustExist: boolean): HssStore {
  if (mustExist && file !== ':memory:' && !existsSync(file)) throw new InputError(`--db: no such store: ${file}`);
  try {
    return new HssStore(file);
  } catch (err) {
    if (err instanceof ImsecError) throw err;
    // Not a SQLite file, no permission, …: a problem with --db, not an imsec bug.
    throw new InputError(`--db: cannot open ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function withStore<T>(file: string, mustExist: boolean, fn: (s: HssStore) => T): T {
  const store = openStore(file, mustExist);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** What the CLI shows of a subscriber: never K or OPc. */
function summary(s: Subscriber) {
  return { impi: s.impi, impus: [...s.impus], amf: toHex(s.amf), sqn: sqnHex(s.sqn), ind_len: s.indLen, created_at: s.createdAt };
}

/** SQN as up to 12 hex digits (6 octets, SEQ ‖ IND). */
function parseSqn(hex: string): number {
  const s = hex.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,12}$/.test(s)) throw new InputError(`--sqn: must be 1 to 12 hex digits (48 bits), got ${JSON.stringify(hex.slice(0, 40))}`);
  return Number.parseInt(s, 16);
}

/** Like fromHex, but the error never quotes the value: these are secrets (K, OP, OPc). */
function secretHex(hex: string, flag: string): Uint8Array {
  if (!/^(?:0x)?(?:[0-9a-fA-F]{2})*$/i.test(hex)) throw new InputError(`${flag}: not an even-length hex string (value not shown)`);
  return fromHex(hex, flag, 16);
}

const collect = (v: string, prev: string[]) => [...prev, v];

interface AddOpts {
  db: string;
  impi: string;
  impu: string[];
  k: string;
  op?: string;
  opc?: string;
  amf: string;
  sqn?: string;
  json?: boolean;
}

export function registerSubscriber(program: Command): void {
  const sub = program.command('subscriber').description('provision subscribers in the embedded HSS store (SQLite)');
  const dbHelp = `HSS store file (default: $IMSEC_HSS_DB or ${DEFAULT_DB})`;

  sub
    .command('add')
    .description('add a subscriber: IMPI, its IMPUs, K and OP or OPc (only OPc is stored), AMF, start SQN')
    .option('--db <file>', dbHelp)
    .requiredOption('--impi <nai>', 'private identity (user@realm)')
    .option('--impu <uri>', 'public identity (sip:, sips: or tel: URI); repeat for several', collect, [])
    .requiredOption('--k <hex>', 'K, 16 octets')
    .option('--op <hex>', 'OP, 16 octets (stored as OPc = E_K(OP) ⊕ OP)')
    .option('--opc <hex>', 'OPc, 16 octets')
    .option('--amf <hex>', 'AMF, 2 octets', '8000')
    .option('--sqn <hex>', 'SQN to start from (48 bits); the first vector uses SEQ + 1', '0')
    .option('--json', 'JSON output')
    .action((o: AddOpts) => {
      if (o.impu.length === 0) throw new InputError('--impu: give at least one public identity');
      if ((o.op === undefined) === (o.opc === undefined)) throw new InputError('give exactly one of --op and --opc');
      const k = secretHex(o.k, '--k');
      const input = {
        impi: o.impi,
        impus: o.impu,
        k,
        ...(o.op !== undefined ? { op: secretHex(o.op, '--op') } : { opc: secretHex(o.opc!, '--opc') }),
        amf: fromHex(o.amf, '--amf', 2),
        sqn: parseSqn(o.sqn ?? '0'),
      };
      const added = withStore(o.db ?? defaultDb(), false, (s) => s.add(input));
      const out = summary(added);
      printResult(o.json ? out : { ...out, impus: out.impus.join(' ') }, o.json === true);
    });

  sub
    .command('list')
    .description('list subscribers: IMPI, IMPUs, AMF, SQN (never K or OPc)')
    .option('--db <file>', dbHelp)
    .option('--json', 'JSON output')
    .action((o: { db?: string; json?: boolean }) => {
      const all = withStore(o.db ?? defaultDb(), true, (s) => s.list().map(summary));
      if (o.json) {
        process.stdout.write(JSON.stringify(all, null, 2) + '\n');
        return;
      }
      printTable(
        all.map((s) => ({ impi: s.impi, impus: s.impus.join(' '), amf: s.amf, sqn: s.sqn })),
        false,
      );
    });

  sub
    .command('remove')
    .description('remove a subscriber and its IMPUs')
    .option('--db <file>', dbHelp)
    .requiredOption('--impi <nai>', 'private identity to remove')
    .option('--json', 'JSON output')
    .action((o: { db?: string; impi: string; json?: boolean }) => {
      const file = o.db ?? defaultDb();
      const removed = withStore(file, true, (s) => s.remove(o.impi));
      if (!removed) {
        process.stderr.write(`imsec: no subscriber ${o.impi} in ${file}\n`);
        process.exitCode = EXIT_CHECK_FAILED;
        return;
      }
      printResult({ removed: o.impi }, o.json === true);
    });
}
