// Host side of the VM harness for tests: whether a VM can run here (and why not), one VM run with
// its stdout/stderr/exit code, and compiling TypeScript guest programs to plain JS before the boot.
// Why compile: under TCG `node --import tsx` costs 5-11 s per process in the guest, plain node ~1 s.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PROJECT_DIR = resolve(HERE, '../..');
export const VM_RUN = join(HERE, 'vm-run');

/** undefined when a VM can boot here; otherwise vm-run's one-line reason (for t.skip). */
export function vmUnavailable(): string | undefined {
  const r = spawnSync(VM_RUN, ['--check'], { encoding: 'utf8' });
  if (r.error) return `vm-run --check failed to start: ${r.error.message}`;
  if (r.status === 0) return undefined;
  return (r.stdout || r.stderr).trim() || `vm-run --check exited ${r.status}`;
}

export interface VmRunOptions {
  /** Directories shared writable at their host paths. */
  readonly rw?: readonly string[];
  /** Do not share the project writable (it stays readable through the host-root overlay, and reads are cached). */
  readonly ro?: boolean;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutS?: number;
  /** Keep the guest console (kernel log) in this file. */
  readonly console?: string;
  /** Called with each chunk of the guest's stderr as it arrives (progress). */
  readonly onStderr?: (chunk: string) => void;
}

export interface VmRunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Boots one VM that runs `argv`; resolves when it has powered off (or the watchdog stopped it). */
export function vmRun(argv: readonly string[], opts: VmRunOptions = {}): Promise<VmRunResult> {
  const args: string[] = [];
  for (const d of opts.rw ?? []) args.push('--rw', d);
  if (opts.ro) args.push('--ro');
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('-e', `${k}=${v}`);
  if (opts.cwd) args.push('-C', opts.cwd);
  if (opts.timeoutS) args.push('--timeout', String(opts.timeoutS));
  if (opts.console) args.push('--console', opts.console);
  args.push('--', ...argv);
  const t0 = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(VM_RUN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      opts.onStderr?.(c);
    });
    // A test runner that is interrupted must not leave a qemu behind: vm-run kills its qemu on TERM.
    const stop = () => child.kill('SIGTERM');
    process.once('exit', stop);
    child.on('error', reject);
    child.on('close', (code) => {
      process.removeListener('exit', stop);
      resolvePromise({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/**
 * Transpiles `entries` and every relative `.ts` module they import (statically or dynamically) to
 * ES2022 JS under `outDir`, mirroring their paths below the project directory, with `.ts` import
 * specifiers rewritten to `.js`. Returns the output path of each entry. Packages (e.g. raw-socket)
 * are not copied: give the guest NODE_PATH=<project>/node_modules.
 */
export function compileForGuest(entries: readonly string[], outDir: string): string[] {
  const seen = new Set<string>();
  const queue = entries.map((e) => resolve(e));
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.ESNext,
    target: ts.ScriptTarget.ES2022,
    verbatimModuleSyntax: true,
    rewriteRelativeImportExtensions: true,
    inlineSourceMap: true,
  };
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    for (const ref of ts.preProcessFile(src, true, true).importedFiles) {
      if (ref.fileName.startsWith('.') && ref.fileName.endsWith('.ts')) queue.push(resolve(dirname(file), ref.fileName));
    }
    const out = ts.transpileModule(src, { compilerOptions: options, fileName: file, reportDiagnostics: false });
    const target = join(outDir, relative(PROJECT_DIR, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, out.outputText);
  }
  // .js files under outDir are ES modules (outDir is outside the project's package scope); the CLI
  // reads its version from the package.json two levels above src/cli/, which is this one.
  const { version } = JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string };
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ type: 'module', version })}\n`);
  return entries.map((e) => join(outDir, relative(PROJECT_DIR, resolve(e))).replace(/\.ts$/, '.js'));
}
