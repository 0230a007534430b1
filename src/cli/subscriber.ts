// `imsec subscriber add|list|remove`: provisioning of the embedded HSS store (scscf/hss-store.ts).
// Output never carries K or OPc; list shows IMPI, IMPUs, AMF and SQN (SEQ ‖ IND, 12 hex digits).
import type { Command } from 'commander';
import { type Subscriber, type SubscriberStore, sqnHex } from '../scscf/hss-store.ts';
import { openHssDb } from './hss-db.ts';
import { computeOpc } from '../aka/index.ts';
import { fromHex, toHex } from '../util/bytes.ts';
import { ImsecError, InputError } from '../util/errors.ts';
import { EXIT_CHECK_FAILED, printResult, printTable } from './output.ts';
import { impiArg, uriArg } from './identity-args.ts';
import { expand, parsePattern, subscriberRange } from '../load/pattern.ts';
import { parseIntArg, parseKeyHex } from './parse-args.ts';

const DEFAULT_DB = './imsec-hss.sqlite';
const defaultDb = () => process.env['IMSEC_HSS_DB'] || DEFAULT_DB;

/** Opens the store; `mustExist` for commands that should not create an empty store by accident. */
function openStore(file: string, mustExist: boolean): SubscriberStore {
  return openHssDb(file, mustExist);
}

function withStore<T>(file: string, mustExist: boolean, fn: (s: SubscriberStore) => T): T {
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
  if (!/^[0-9a-fA-F]{1,12}$/.test(s))
    throw new InputError(`--sqn: must be 1 to 12 hex digits (48 bits), got ${JSON.stringify(hex.slice(0, 40))}`);
  return Number.parseInt(s, 16);
}

/** K, OP, OPc: the error never quotes the value. */
const secretHex = (hex: string, flag: string): Uint8Array => parseKeyHex(hex, flag, 16);

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
  first?: string;
  count?: string;
  json?: boolean;
}

function countArg(text: string | undefined, flag: string, dflt: number, min: number): number {
  return text === undefined ? dflt : parseIntArg(text, flag, min, Number.MAX_SAFE_INTEGER);
}

/** `--count`: one transaction for the whole range; prints how many and how long it took. */
function addRange(o: AddOpts): void {
  const first = countArg(o.first, '--first', 1, 0);
  const count = countArg(o.count, '--count', 1, 1);
  const range = subscriberRange({ impi: o.impi, impu: o.impu[0]!, first, count });
  const extra = o.impu.slice(1).map((p, i) => parsePattern(p, `--impu #${i + 2}`));
  for (const p of extra) expand(p, first + count - 1); // fits the width, checked before the batch
  const k = secretHex(o.k, '--k');
  // One K for the whole range: OPc = E_K(OP) ⊕ OP once, not per subscriber.
  const opc = o.op !== undefined ? computeOpc(k, secretHex(o.op, '--op')) : secretHex(o.opc!, '--opc');
  const amf = fromHex(o.amf, '--amf', 2);
  const sqn = parseSqn(o.sqn ?? '0');
  function* all() {
    for (let n = first; n < first + count; n++) {
      yield { impi: expand(range.impi, n), impus: [expand(range.impu, n), ...extra.map((p) => expand(p, n))], k, opc, amf, sqn };
    }
  }
  const t0 = performance.now();
  const added = withStore(o.db ?? defaultDb(), false, (s) => s.addMany(all()));
  const ms = Math.round(performance.now() - t0);
  printResult({ added, first: expand(range.impi, first), last: expand(range.impi, first + count - 1), ms }, o.json === true);
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
    .option('--first <n>', 'range: first counter value for {n} in --impi/--impu', '1')
    .option('--count <n>', 'range: how many subscribers, n = first … first+count-1 (one transaction)')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      `
Ranges: --impi and --impu may hold one counter {n} (or {n:WIDTH}, zero-padded); with --count the
subscribers n = first … first+count-1 are added in one transaction, all or none, e.g.
  imsec subscriber add --impi '00101{n:10}@ims.example' --impu 'sip:00101{n:10}@ims.example' \
    --first 1 --count 100000 --k 465b5ce8b199b49faa5f0a2ee238a6bc --opc cd63cb71954a9f4e48a5994e37a02baf`,
    )
    .action((o: AddOpts) => {
      if (o.impu.length === 0) throw new InputError('--impu: give at least one public identity');
      if (o.count === undefined && !/\{n(?::\d+)?\}/.test(o.impi)) {
        impiArg(o.impi);
        o.impu.forEach((u) => uriArg(u, '--impu'));
      }
      if ((o.op === undefined) === (o.opc === undefined)) throw new InputError('give exactly one of --op and --opc');
      if (o.count !== undefined || /\{n(?::\d+)?\}/.test(o.impi)) {
        addRange(o);
        return;
      }
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
      impiArg(o.impi);
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
