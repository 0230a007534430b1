// `imsec secagree negotiate`: what the P-CSCF picks from a Security-Client (33.203 §7.2, Annex H,
// Annex M mode rule; spec digest §5.4, §15A.5) and the Security-Server value it would send.
// Exit 2: the header, policy or a number does not parse; exit 1: no acceptable mechanism.
import type { Command } from 'commander';
import {
  DEFAULT_ALLOW,
  buildSecurityServer,
  formatPair,
  negotiate,
  parseAlgPairList,
  parsePort,
  parseSecurityHeader,
  parseSpi,
  serializeMechanism,
  type SpiPortSet,
} from '../secagree/index.ts';
import { printResult, reportFailure } from './output.ts';
import { unwrap } from '../util/result.ts';
import { InputError } from '../util/errors.ts';

/** Example P-CSCF values used when --spi-c/--spi-s/--port-c/--port-s are not given. */
export const DEFAULT_SERVER: SpiPortSet = { spiC: 4096, spiS: 4097, portC: 5062, portS: 5063 };

interface NegotiateOptions {
  client: string[];
  policy?: string;
  allowDeprecated?: boolean;
  nat?: boolean;
  spiC?: string;
  spiS?: string;
  portC?: string;
  portS?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

const HELP = `
Policy syntax: comma-separated alg/ealg pairs, most preferred first; "alg" alone means alg/null.
  e.g. --policy hmac-sha-1-96/aes-cbc,hmac-sha-1-96/null,null/aes-gcm
  default: ${DEFAULT_ALLOW.map(formatPair).join(',')}
  hmac-md5-96 and des-ede3-cbc pairs are used only with --allow-deprecated.
Mode: --nat (top Via differs from the packet source) requires a mod=UDP-enc-tun entry; without it
  only mod=trans entries are chosen.
Server SPIs/ports default to spi-c=${DEFAULT_SERVER.spiC} spi-s=${DEFAULT_SERVER.spiS} port-c=${DEFAULT_SERVER.portC} port-s=${DEFAULT_SERVER.portS}.
Exit status: 0 chosen, 1 no acceptable mechanism, 2 unparsable input.

Example:
  imsec secagree negotiate --client 'ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1236;spi-s=1237;port-c=7004;port-s=7005'
`;

export function registerSecagree(program: Command): void {
  const secagree = program.command('secagree').description('SIP security agreement (RFC 3329, 33.203 Annex H)');
  secagree
    .command('negotiate')
    .description('choose alg/ealg/mod from a Security-Client as a P-CSCF would, and print the Security-Server')
    .requiredOption('--client <value>', 'Security-Client value (repeat for repeated headers)', collect)
    .option('--policy <list>', 'accepted alg/ealg pairs in preference order (see below)')
    .option('--allow-deprecated', 'also accept hmac-md5-96 and des-ede3-cbc')
    .option('--nat', 'a NAT was detected: only mod=UDP-enc-tun may be chosen (Annex M)')
    .option('--spi-c <n>', `P-CSCF spi-c (spi_pc), default ${DEFAULT_SERVER.spiC}`)
    .option('--spi-s <n>', `P-CSCF spi-s (spi_ps), default ${DEFAULT_SERVER.spiS}`)
    .option('--port-c <n>', `P-CSCF port-c (port_pc), default ${DEFAULT_SERVER.portC}`)
    .option('--port-s <n>', `P-CSCF port-s (port_ps), default ${DEFAULT_SERVER.portS}`)
    .option('--json', 'JSON output')
    .addHelpText('after', HELP)
    .action((o: NegotiateOptions) => {
      // Everything that can be malformed is parsed first, so a bad input exits 2 (InputError).
      const client = unwrap(parseSecurityHeader(o.client, 'Security-Client')); // its error: exit 2 by code
      const allow = o.policy === undefined ? undefined : parseAlgPairList(o.policy, '--policy');
      const server: SpiPortSet = {
        spiC: o.spiC === undefined ? DEFAULT_SERVER.spiC : parseSpi(o.spiC, '--spi-c'),
        spiS: o.spiS === undefined ? DEFAULT_SERVER.spiS : parseSpi(o.spiS, '--spi-s'),
        portC: o.portC === undefined ? DEFAULT_SERVER.portC : parsePort(o.portC, '--port-c'),
        portS: o.portS === undefined ? DEFAULT_SERVER.portS : parsePort(o.portS, '--port-s'),
      };
      // RFC 3329 / 33.203 §7.1: spi-c and spi-s name two different inbound SAs; equal values cannot be installed.
      if (server.spiC === server.spiS) throw new InputError(`--spi-c and --spi-s must differ, both are ${server.spiC}`);
      client.forEach((m, i) => {
        if (m.spiC !== undefined && m.spiC === m.spiS)
          throw new InputError(`--client: mechanism ${i + 1} has spi-c = spi-s = ${m.spiC}: two SAs cannot share an SPI`);
      });
      const nat = o.nat === true;
      const r = negotiate(client, { ...(allow && { allow }), allowDeprecated: o.allowDeprecated === true }, { natDetected: nat });
      if (!r.ok) {
        reportFailure(r.error);
        return;
      }
      printResult(
        {
          alg: r.alg,
          ealg: r.ealg,
          mod: r.mod,
          nat,
          spi_c: r.client.spiC,
          spi_s: r.client.spiS,
          port_c: r.client.portC,
          port_s: r.client.portS,
          security_server: serializeMechanism(buildSecurityServer(r, server)),
        },
        o.json === true,
      );
    });
}
