// The process-level boundary of the long-running commands (pcscf, core, ue, demo), issue 10 §4.
// Every socket and timer callback already has its own boundary (util/guard.ts); this covers what
// is left, and the choice is deliberate:
// - a rejected promise nobody awaited (a fire-and-forget send, an async timer body) abandoned only
//   its own async chain: it is counted and reported like a guarded fault, and the process serves on;
// - an exception that reaches `uncaughtException` escaped every boundary, so it unwound code whose
//   state we cannot vouch for (a table half updated, an SA half installed): report it in one line
//   and exit with EXIT_INTERNAL so a supervisor restarts a clean process. Serving on would trade a
//   visible restart for silent corruption.
import { containFault, describeFault, setBoundaryReporter } from '../util/guard.ts';
import { EXIT_INTERNAL } from './output.ts';

export { EXIT_INTERNAL } from './output.ts';

export interface ServeGuardOptions {
  /** Where reports go (default stderr); one line each, never input bytes or keys. */
  readonly write?: (line: string) => void;
  /** How to end the process after an uncontained exception (tests replace it). */
  readonly exit?: (code: number) => void;
}

/** Installs the process-level handlers; returns a function that removes them. */
export function guardProcess(o: ServeGuardOptions = {}): () => void {
  const write = o.write ?? ((l: string) => process.stderr.write(`${l}\n`));
  const exit = o.exit ?? ((code: number) => process.exit(code));
  const previous = setBoundaryReporter((f) => write(describeFault(f)));
  const onRejection = (reason: unknown) => containFault('process.unhandled-rejection', reason);
  const onException = (error: unknown) => {
    write(describeFault({ boundary: 'process (outside every boundary: exiting)', error, count: 1 }));
    exit(EXIT_INTERNAL);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    setBoundaryReporter(previous);
  };
}
