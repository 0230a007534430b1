// The imsec command line: builds the program for this command line (src/cli/commands.ts loads only
// the command group it names) and maps errors to the exit statuses of the CLI contract.
import { CommanderError } from 'commander';
import { buildProgram } from './commands.ts';
import { EXIT_BAD_INPUT, exitQuietlyOnEpipe, reportError } from './output.ts';

exitQuietlyOnEpipe();

try {
  const program = await buildProgram(process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its message (help, version, or a usage error).
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
  } else {
    process.exitCode = reportError(err);
  }
}
