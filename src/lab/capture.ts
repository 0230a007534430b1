// Packet captures inside a lab namespace: tcpdump (preferred) or tshark writing a pcap file, started
// only once the tool says it is listening, stopped so that every captured packet is on disk.
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { LabError, LabUnavailableError } from './errors.ts';
import { findTool } from './netns.ts';
import type { LabProcess } from './process.ts';

export interface CaptureOptions {
  /** Wait this long before signalling the tool, so packets sent just before stop() are read (default 150 ms). */
  settleMs?: number;
  /** How long to wait for the tool to start listening (default 10 s). */
  startTimeoutMs?: number;
}

/** Stops the capture; resolves once the tool exited and the file is complete. Idempotent. */
export type StopCapture = () => Promise<void>;

/** undefined when tcpdump or tshark is installed; otherwise why a capture cannot run. */
export function captureMissing(): string | undefined {
  return findTool('tcpdump') || findTool('tshark') ? undefined : 'neither tcpdump nor tshark is installed (apt-get install tcpdump)';
}

function captureArgv(iface: string, filter: string, file: string): { argv: string[]; ready: RegExp } {
  if (findTool('tcpdump')) {
    // -U and --immediate-mode: each packet is read and written as it comes, not per buffer.
    // -Z root: Debian's tcpdump would otherwise drop to the tcpdump user, who cannot write most paths.
    const argv = ['tcpdump', '-i', iface, '-n', '-U', '--immediate-mode', '-Z', 'root', '-w', file];
    return { argv: filter ? [...argv, filter] : argv, ready: /listening on/ };
  }
  if (findTool('tshark')) {
    const argv = ['tshark', '-i', iface, '-n', '-F', 'pcap', '-w', file];
    return { argv: filter ? [...argv, '-f', filter] : argv, ready: /Capturing on/ };
  }
  throw new LabUnavailableError(captureMissing()!);
}

/**
 * Starts a capture with `spawn` (the lab's, so teardown kills it) and resolves once the tool is
 * listening; rejects with the tool's stderr if it exits first (bad interface, bad filter).
 */
export async function startCapture(
  spawn: (argv: string[]) => LabProcess,
  iface: string,
  filter: string,
  file: string,
  opts: CaptureOptions = {},
): Promise<StopCapture> {
  const path = resolve(file);
  const { argv, ready } = captureArgv(iface, filter, path);
  const proc = spawn(argv);
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => {
      done();
      void proc.kill('SIGKILL');
      fail(
        new LabError(
          'LAB_TIMEOUT',
          `\`${argv.join(' ')}\` in ${proc.ns} did not start listening within ${opts.startTimeoutMs ?? 10_000} ms: ${proc.stderr.trim()}`,
        ),
      );
    }, opts.startTimeoutMs ?? 10_000);
    const onErr = (line: string) => {
      if (!ready.test(line)) return;
      done();
      ok();
    };
    const onExit = () => {
      done();
      fail(new LabError('LAB_COMMAND_FAILED', `\`${argv.join(' ')}\` in ${proc.ns} exited before listening: ${proc.stderr.trim()}`));
    };
    const done = () => {
      clearTimeout(timer);
      proc.off('stderr', onErr);
      proc.off('exit', onExit);
    };
    proc.on('stderr', onErr);
    proc.on('exit', onExit);
  });
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      await new Promise((r) => setTimeout(r, opts.settleMs ?? 150));
      // SIGINT: both tools finish the file (tcpdump flushes its buffer, dumpcap closes the pcap).
      const e = await proc.kill('SIGINT', 3_000);
      if (e.signal === 'SIGKILL')
        throw new LabError('LAB_COMMAND_FAILED', `\`${argv.join(' ')}\` ignored SIGINT and was killed; ${path} may be truncated`);
      if (!existsSync(path)) throw new LabError('LAB_COMMAND_FAILED', `\`${argv.join(' ')}\` wrote no file ${path}: ${proc.stderr.trim()}`);
    })());
}
