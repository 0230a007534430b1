// Running tshark (Wireshark 4.x) as an independent ESP oracle: availability check with a reason,
// and a fields run that returns one record per frame. Each run costs about a second: batch.
import { spawnSync } from 'node:child_process';

/** undefined when tshark runs; otherwise why not (for t.skip). */
export function tsharkMissing(): string | undefined {
  const r = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  if (r.error) return `tshark not installed: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message} (apt-get install tshark)`;
  if (r.status !== 0) return `tshark --version failed: ${r.stderr.trim()}`;
  return undefined;
}

/** Runs `tshark -r file ARGS -T fields -e F…`; each frame is a map field → all occurrences. */
export function tsharkFields(
  file: string,
  args: readonly string[],
  fields: readonly string[],
  env?: Record<string, string>,
): Map<string, string[]>[] {
  const r = spawnSync(
    'tshark',
    [
      '-n',
      '-r',
      file,
      ...args,
      '-T',
      'fields',
      '-E',
      'separator=/t',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=|',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20, ...(env ? { env: { ...process.env, ...env } } : {}) },
  );
  if (r.status !== 0) throw new Error(`tshark exited ${r.status}: ${r.stderr.replace(/Running as user .*\n?/, '').trim()}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const cols = line.split('\t');
      return new Map(fields.map((f, i) => [f, cols[i] ? cols[i]!.split('|') : []]));
    });
}

/** tshark prints FT_BOOLEAN as 1/0 in 4.0 and True/False in later releases. */
export function isTrue(v: string | undefined): boolean {
  return v === '1' || v === 'True' || v === 'true';
}
