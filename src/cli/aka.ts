// `imsec aka vector|respond|resync|digest`: the HSS, USIM and Digest AKA computations of src/aka
// (TS 35.206, TS 33.102 §6.3, RFC 3310/4169) from the command line. Failed checks exit 1.
import type { Command } from 'commander';
import { fromHex, toBase64, toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { unwrap } from '../util/result.ts';
import {
  AKA_ALGORITHMS,
  Usim,
  buildNonce,
  computeOpc,
  digestResponse,
  generateVector,
  parseAkaAlgorithm,
  parseAuts,
  parseNonce,
  verifyAuts,
} from '../aka/index.ts';
import { EXIT_CHECK_FAILED, printResult } from './output.ts';
import { parseKeyHex } from './parse-args.ts';

interface KeyOpts {
  k: string;
  op?: string;
  opc?: string;
}

const secretHex = (hex: string, field: string): Uint8Array => parseKeyHex(hex, field, 16);

/** K and OPc from --k and exactly one of --op / --opc. */
function subscriberKeys(o: KeyOpts): { k: Uint8Array; opc: Uint8Array } {
  if ((o.op === undefined) === (o.opc === undefined)) throw new InputError('give exactly one of --op and --opc');
  const k = secretHex(o.k, '--k');
  const opc = o.opc !== undefined ? secretHex(o.opc, '--opc') : computeOpc(k, secretHex(o.op!, '--op'));
  return { k, opc };
}

function keyOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--k <hex>', 'subscriber key K, 16 octets')
    .option('--op <hex>', 'operator variant OP, 16 octets (or --opc)')
    .option('--opc <hex>', 'OPc = E_K(OP) ⊕ OP, 16 octets (or --op)');
}

/** TS 33.102 §6.3.2: RES is 4 to 16 octets; "" is the empty password of a sync failure (RFC 3310 §3.4). */
function resArg(hex: string): Uint8Array {
  const res = fromHex(hex, '--res');
  if (res.length !== 0 && (res.length < 4 || res.length > 16))
    throw new InputError(`--res: RES is 4 to 16 octets (TS 33.102 §6.3.2), got ${res.length}`);
  return res;
}

export function registerAka(program: Command): void {
  const aka = program.command('aka').description('Milenage, AKA vectors, USIM check, AUTS, Digest AKA (TS 33.102, RFC 3310)');

  keyOptions(aka.command('vector').description('generate an authentication vector (HSS/AuC side)'))
    .requiredOption('--sqn <hex>', 'SQN, 6 octets')
    .requiredOption('--amf <hex>', 'AMF, 2 octets')
    .option('--rand <hex>', 'RAND, 16 octets (default: random)')
    .option('--json', 'JSON output')
    .action((o: KeyOpts & { sqn: string; amf: string; rand?: string; json?: boolean }) => {
      const { k, opc } = subscriberKeys(o);
      const av = generateVector({
        k,
        opc,
        sqn: fromHex(o.sqn, '--sqn', 6),
        amf: fromHex(o.amf, '--amf', 2),
        rand: o.rand !== undefined ? fromHex(o.rand, '--rand', 16) : undefined,
      });
      printResult(
        {
          rand: toHex(av.rand),
          autn: toHex(av.autn),
          xres: toHex(av.xres),
          ck: toHex(av.ck),
          ik: toHex(av.ik),
          ak: toHex(av.ak),
          mac_a: toHex(av.macA),
          opc: toHex(opc),
          nonce: buildNonce(av.rand, av.autn),
        },
        o.json === true,
      );
    });

  keyOptions(aka.command('respond').description('check a challenge as the USIM: RES/CK/IK, or MAC / sync failure'))
    .option('--nonce <b64>', 'Digest nonce = base64(RAND ‖ AUTN ‖ …) (or --rand with --autn)')
    .option('--rand <hex>', 'RAND, 16 octets')
    .option('--autn <hex>', 'AUTN, 16 octets')
    .option('--sqn-ms <hex>', 'highest SQN accepted so far, 6 octets: only a larger SQN is fresh (default: any SQN)')
    .option('--json', 'JSON output')
    .action((o: KeyOpts & { nonce?: string; rand?: string; autn?: string; sqnMs?: string; json?: boolean }) => {
      const { k, opc } = subscriberKeys(o);
      let rand: Uint8Array;
      let autn: Uint8Array;
      if (o.nonce !== undefined) {
        if (o.rand !== undefined || o.autn !== undefined) throw new InputError('give --nonce or --rand with --autn, not both');
        ({ rand, autn } = unwrap(parseNonce(o.nonce)));
      } else {
        if (o.rand === undefined || o.autn === undefined) throw new InputError('give --nonce, or both --rand and --autn');
        rand = fromHex(o.rand, '--rand', 16);
        autn = fromHex(o.autn, '--autn', 16);
      }
      const usim =
        o.sqnMs !== undefined ? new Usim({ k, opc, sqnMs: fromHex(o.sqnMs, '--sqn-ms', 6) }) : new Usim({ k, opc, acceptAnySqn: true });
      const r = usim.respond(rand, autn);
      const base = { result: r.result, sqn: toHex(r.sqn), amf: toHex(r.amf) };
      if (r.result === 'ok') {
        printResult({ ...base, res: toHex(r.res), ck: toHex(r.ck), ik: toHex(r.ik) }, o.json === true);
        return;
      }
      printResult(r.result === 'sync_failure' ? { ...base, auts: toBase64(r.auts), sqn_ms: toHex(r.sqnMs) } : base, o.json === true);
      process.exitCode = EXIT_CHECK_FAILED;
    });

  keyOptions(aka.command('resync').description('recover SQN_MS from an AUTS and check MAC-S (HSS side, AMF* = 0000)'))
    .requiredOption('--rand <hex>', 'RAND of the refused challenge, 16 octets')
    .requiredOption('--auts <b64>', 'AUTS as in auts="…": base64 of 14 octets')
    .option('--json', 'JSON output')
    .action((o: KeyOpts & { rand: string; auts: string; json?: boolean }) => {
      const { k, opc } = subscriberKeys(o);
      const r = verifyAuts({ k, opc, rand: fromHex(o.rand, '--rand', 16), auts: unwrap(parseAuts(o.auts)) });
      printResult({ sqn_ms: toHex(r.sqnMs), mac_s_ok: r.ok }, o.json === true);
      if (!r.ok) process.exitCode = EXIT_CHECK_FAILED;
    });

  aka
    .command('digest')
    .description('compute the Digest AKA response (RFC 3310 / RFC 4169)')
    .requiredOption('--username <s>', 'IMPI')
    .requiredOption('--realm <s>', 'realm of the challenge')
    .requiredOption('--uri <s>', 'digest-uri, e.g. sip:<home domain>')
    .requiredOption('--nonce <b64>', 'nonce of the challenge (used verbatim)')
    .requiredOption('--res <hex>', 'RES; "" for the empty password of a sync failure')
    .option('--ik <hex>', 'IK, 16 octets (AKAv2-MD5)')
    .option('--ck <hex>', 'CK, 16 octets (AKAv2-MD5)')
    .option('--algorithm <name>', AKA_ALGORITHMS.join(' or '), 'AKAv1-MD5')
    .option('--method <s>', 'SIP method', 'REGISTER')
    .option('--qop <qop>', 'auth (or auth-int, empty body)')
    .option('--nc <hex>', 'nonce count, 8 hex digits (with --qop)')
    .option('--cnonce <s>', 'client nonce (with --qop)')
    .option('--json', 'JSON output')
    .action(
      (o: {
        username: string;
        realm: string;
        uri: string;
        nonce: string;
        res: string;
        ik?: string;
        ck?: string;
        algorithm: string;
        method: string;
        qop?: string;
        nc?: string;
        cnonce?: string;
        json?: boolean;
      }) => {
        if (o.qop !== undefined && o.qop !== 'auth' && o.qop !== 'auth-int')
          throw new InputError(`--qop: must be auth or auth-int, got ${JSON.stringify(o.qop)}`);
        if (o.qop === undefined && (o.nc !== undefined || o.cnonce !== undefined)) throw new InputError('--nc and --cnonce need --qop');
        const response = digestResponse({
          username: o.username,
          realm: o.realm,
          uri: o.uri,
          nonce: o.nonce,
          method: o.method,
          algorithm: parseAkaAlgorithm(o.algorithm),
          res: resArg(o.res),
          ik: o.ik !== undefined ? secretHex(o.ik, '--ik') : undefined,
          ck: o.ck !== undefined ? secretHex(o.ck, '--ck') : undefined,
          qop: o.qop,
          nc: o.nc,
          cnonce: o.cnonce,
        });
        printResult({ response }, o.json === true);
      },
    );
}
