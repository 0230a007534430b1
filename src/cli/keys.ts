// `imsec keys expand`: 33.203 Annex I, CK_IM/IK_IM → CK_ESP/IK_ESP for one algorithm pair.
import type { Command } from 'commander';
import { toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { ENCRYPTION_ALGS, INTEGRITY_ALGS, isEncryptionAlg, isIntegrityAlg } from '../ipsec/algorithms.ts';
import { expandKeys } from '../ipsec/keys.ts';
import { printResult } from './output.ts';
import { parseKeyHex } from './parse-args.ts';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('ESP key derivation (33.203 Annex I)');
  keys
    .command('expand')
    .description('derive IK_ESP / CK_ESP (and the GCM/GMAC salt) from IK and CK')
    .requiredOption('--ik <hex>', 'IK (IK_IM), 16 octets')
    .requiredOption('--ck <hex>', 'CK (CK_IM), 16 octets')
    .requiredOption('--alg <name>', `integrity algorithm: ${INTEGRITY_ALGS.join(', ')}`)
    .requiredOption('--ealg <name>', `encryption algorithm: ${ENCRYPTION_ALGS.join(', ')}`)
    .option('--json', 'JSON output')
    .action((o: { ik: string; ck: string; alg: string; ealg: string; json?: boolean }) => {
      if (!isIntegrityAlg(o.alg)) throw new InputError(`--alg: unknown integrity algorithm ${JSON.stringify(o.alg)}`);
      if (!isEncryptionAlg(o.ealg)) throw new InputError(`--ealg: unknown encryption algorithm ${JSON.stringify(o.ealg)}`);
      const k = expandKeys(parseKeyHex(o.ik, '--ik', 16), parseKeyHex(o.ck, '--ck', 16), o.alg, o.ealg);
      printResult(
        { alg: o.alg, ealg: o.ealg, ik_esp: toHex(k.ikEsp), ck_esp: toHex(k.ckEsp), salt: k.salt ? toHex(k.salt) : undefined },
        o.json === true,
      );
    });
}
