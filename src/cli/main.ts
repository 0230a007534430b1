// The imsec command line. Each command group lives in its own file and registers itself here.
import { Command, CommanderError } from 'commander';
import { EXIT_BAD_INPUT, reportError } from './output.ts';
import { registerKeys } from './keys.ts';
import { registerAka } from './aka.ts';
import { registerEsp } from './esp.ts';
import { registerSecagree } from './secagree.ts';
import { registerSubscriber } from './subscriber.ts';
import { registerCore } from './core.ts';
import { registerPcscf } from './pcscf.ts';
import { registerUe } from './ue.ts';
import { registerDemo } from './demo.ts';

const program = new Command();
program
  .name('imsec')
  .description('IMS access security (3GPP TS 33.203): AKA, sec-agree, IPsec ESP, UE and P-CSCF')
  .showHelpAfterError()
  .exitOverride();

registerKeys(program);
registerAka(program);
registerEsp(program);
registerSecagree(program);
registerSubscriber(program);
registerCore(program);
registerPcscf(program);
registerUe(program);
registerDemo(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its message (help, version, or a usage error).
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
  } else {
    process.exitCode = reportError(err);
  }
}
