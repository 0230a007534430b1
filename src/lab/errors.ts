// The errors of the NAT lab (src/lab): one base class with a code union, plus the two cases callers
// tell apart — the host cannot run a lab at all (skip), or one external command failed (a bug or a
// broken host; the message names the command line and its stderr).
import { ImsecError } from '../util/errors.ts';

export type LabErrorCode =
  /** Not root, a tool missing, no netns or nftables NAT support: the lab cannot run here. */
  | 'LAB_UNAVAILABLE'
  /** An external command (ip, nft, sysctl, conntrack, tcpdump…) exited non-zero or could not start. */
  | 'LAB_COMMAND_FAILED'
  /** buildNatLab options out of range. */
  | 'LAB_BAD_OPTIONS'
  /** exec/spawn/capture on a lab that destroy() already tore down. */
  | 'LAB_DESTROYED'
  /** A command or a wait for an output line took longer than allowed. */
  | 'LAB_TIMEOUT'
  /** A spawned process exited while someone was waiting for one of its lines. */
  | 'LAB_PROCESS_EXITED'
  /** destroy() could not remove something it created (the message lists what is left). */
  | 'LAB_TEARDOWN_FAILED';

export class LabError extends ImsecError {
  declare readonly code: LabErrorCode;
  constructor(code: LabErrorCode, message: string) {
    super(code, message);
  }
}

/** The host cannot run the lab; `reason` says exactly what is missing (tests skip with it). */
export class LabUnavailableError extends LabError {
  constructor(readonly reason: string) {
    super('LAB_UNAVAILABLE', `NAT lab unavailable: ${reason}`);
  }
}

/** One external command failed; carries its argv, exit status and stderr. */
export class LabCommandError extends LabError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    detail?: string,
  ) {
    const status = detail ?? (exitCode === null ? 'was killed' : `exited ${exitCode}`);
    const err = stderr.trim();
    super('LAB_COMMAND_FAILED', `\`${argv.join(' ')}\` ${status}${err ? `: ${err}` : ''}`);
  }
}
