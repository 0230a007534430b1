// The command groups of imsec and how a command line is turned into a commander program. Each
// group lives in its own file (src/cli/<group>.ts) and declares its commands and options there;
// buildProgram imports only the group the command line names, so `imsec aka vector` never loads
// the P-CSCF, SQLite or the ESP engine (start-up: `npm run bench:startup`). `imsec --help` lists
// the groups from COMMAND_GROUPS without loading any; `imsec <group> … --help` is the group's own,
// complete help.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';

type Register = (program: Command) => void;

export interface CommandGroup {
  readonly name: string;
  /** Shown by `imsec --help`; the same as the group's own description (checked by commands.test.ts). */
  readonly description: string;
  readonly load: () => Promise<Register>;
}

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { name: 'keys', description: 'ESP key derivation (33.203 Annex I)', load: async () => (await import('./keys.ts')).registerKeys },
  {
    name: 'aka',
    description: 'Milenage, AKA vectors, USIM check, AUTS, Digest AKA (TS 33.102, RFC 3310)',
    load: async () => (await import('./aka.ts')).registerAka,
  },
  { name: 'esp', description: 'userspace ESP tools (RFC 4303, RFC 3948)', load: async () => (await import('./esp.ts')).registerEsp },
  {
    name: 'secagree',
    description: 'SIP security agreement (RFC 3329, 33.203 Annex H)',
    load: async () => (await import('./secagree.ts')).registerSecagree,
  },
  {
    name: 'subscriber',
    description: 'provision subscribers in the embedded HSS store (SQLite)',
    load: async () => (await import('./subscriber.ts')).registerSubscriber,
  },
  {
    name: 'core',
    description: 'run the embedded S-CSCF + HSS (IMS AKA registrar, bindings, routing) until SIGINT/SIGTERM',
    load: async () => (await import('./core.ts')).registerCore,
  },
  {
    name: 'pcscf',
    description: 'run the P-CSCF (33.203 access edge: sec-agree, IPsec SAs, NAT detection) until SIGINT/SIGTERM',
    load: async () => (await import('./pcscf.ts')).registerPcscf,
  },
  {
    name: 'ue',
    description: 'an IMS UE: IMS AKA registration with IPsec (33.203) against any P-CSCF',
    load: async () => (await import('./ue.ts')).registerUe,
  },
  {
    name: 'demo',
    description: 'run core (S-CSCF + HSS), P-CSCF and UE on loopback: register, MESSAGE both ways, re-register, de-register',
    load: async () => (await import('./demo.ts')).registerDemo,
  },
  {
    name: 'load',
    description:
      'IMS AKA + IPsec load generator: many UEs register, refresh, send MESSAGEs, churn and de-register; report with latency percentiles',
    load: async () => (await import('./load.ts')).registerLoad,
  },
];

/** The package version (package.json is two levels up from both src/cli/ and dist/cli/). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  // A copy of the sources compiled elsewhere (the VM tests) may sit under a package.json without one.
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** The group `argv` (without node and script) names: `imsec aka …` or `imsec help aka`. */
export function groupOf(args: readonly string[]): CommandGroup | undefined {
  const name = args[0] === 'help' ? args[1] : args[0];
  return COMMAND_GROUPS.find((g) => g.name === name);
}

/** The program for this command line: the named group fully declared, or every group as a stub. */
export async function buildProgram(args: readonly string[]): Promise<Command> {
  const program = new Command();
  program
    .name('imsec')
    .description('IMS access security (3GPP TS 33.203): AKA, sec-agree, IPsec ESP, UE and P-CSCF')
    .version(packageVersion(), '-V, --version', 'print the imsec version')
    .showHelpAfterError()
    .exitOverride();
  const group = groupOf(args);
  if (group) (await group.load())(program);
  else for (const g of COMMAND_GROUPS) program.command(g.name).description(g.description);
  return program;
}
