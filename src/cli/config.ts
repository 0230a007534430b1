// `--config FILE` and `--print-config` for the long-running commands (pcscf, core, load). A file is
// YAML whose keys are the command's long flag names without the dashes (`port-c: 5064`); one zod
// schema per command validates the merge of flags over file over defaults, so a value is checked
// the same way wherever it came from. A bad file is an InputError (exit 2) naming the key and what
// was expected; --print-config shows the effective configuration with secrets redacted.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { InputError } from '../util/errors.ts';

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The YAML mapping in `file`, keys turned from `port-c` into `portC`. InputError on anything else. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`--config: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const at = err.linePos?.[0];
    throw new InputError(
      `${file}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    );
  }
  const v: unknown = doc.toJS();
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new InputError(`${file}: expected a mapping of settings (key: value), got ${Array.isArray(v) ? 'a list' : typeof v}`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[camel(k)] = x;
  return out;
}

/** Where each key's value came from, for error messages. */
type Origin = 'flag' | 'file';

function describe(issue: z.core.$ZodIssue, origins: Map<string, Origin>, file: string | undefined): string {
  const top = issue.path[0];
  const keys = issue.code === 'unrecognized_keys' ? issue.keys.map(kebab) : [];
  if (keys.length > 0) return `${file ?? 'config'}: unknown key${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`;
  const path = issue.path.map((p) => (typeof p === 'string' ? kebab(p) : String(p))).join('.');
  const origin = typeof top === 'string' ? origins.get(top) : undefined;
  // A key from nowhere is a missing one: name both places it could be given.
  const where =
    origin === 'flag' ? `--${kebab(top as string)}` : origin === 'file' ? `${file}: ${path}` : `--${path} (or ${path}: in --config)`;
  return `${where}: ${issue.message}`;
}

/**
 * The effective configuration: `flags` (only the ones given on the command line, camelCase) over the
 * file's settings over the schema's defaults, validated by `schema`. Every problem in one InputError.
 */
export function loadConfig<S extends z.ZodType>(schema: S, file: string | undefined, flags: Record<string, unknown>): z.output<S> {
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const origins = new Map<string, Origin>();
  for (const k of Object.keys(fromFile)) origins.set(k, 'file');
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  for (const k of Object.keys(given)) origins.set(k, 'flag');
  const r = schema.safeParse({ ...fromFile, ...given });
  if (!r.success) throw new InputError(r.error.issues.map((i) => describe(i, origins, file)).join('; '));
  return r.data;
}

/** The options of `cmd` that were given on the command line (or by env), by attribute name. */
export function givenFlags(cmd: Command, skip: readonly string[] = ['config', 'printConfig']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cmd.opts())) {
    const src = cmd.getOptionValueSource(k);
    if (skip.includes(k) || (src !== 'cli' && src !== 'env')) continue;
    out[k] = v;
  }
  return out;
}

/** Adds `--config FILE` and `--print-config` to a command. */
export function addConfigOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'YAML file of settings (keys are the long flag names: port-c: 5064); flags override it')
    .option('--print-config', 'print the effective configuration (secrets redacted) and exit');
}

const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]*@/i;

/** A copy of `config` fit to print: keys as in the file, `secrets` replaced, URL passwords hidden. */
export function redactConfig(config: Record<string, unknown>, secrets: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    out[kebab(k)] = secrets.includes(k) ? '[redacted]' : typeof v === 'string' ? v.replace(URL_PASSWORD, '$1[redacted]@') : v;
  }
  return out;
}

/** The effective configuration as YAML, loadable again with --config (secrets aside). */
export function formatConfig(config: Record<string, unknown>, secrets: readonly string[] = []): string {
  return stringify(redactConfig(config, secrets));
}

/**
 * For a command's action: the validated configuration, or undefined after printing it when
 * --print-config was given. `env` maps attribute names to environment values that act as flags.
 */
export function resolveConfig<S extends z.ZodType>(
  cmd: Command,
  schema: S,
  o: { readonly secrets?: readonly string[]; readonly env?: Record<string, string | undefined>; readonly write?: (s: string) => void } = {},
): z.output<S> | undefined {
  const opts = cmd.opts() as { config?: string; printConfig?: boolean };
  const envFlags = Object.fromEntries(Object.entries(o.env ?? {}).filter(([, v]) => v !== undefined && v !== ''));
  const config = loadConfig(schema, opts.config, { ...envFlags, ...givenFlags(cmd) });
  if (opts.printConfig !== true) return config;
  (o.write ?? ((s: string) => process.stdout.write(s)))(formatConfig(config as Record<string, unknown>, o.secrets));
  return undefined;
}

// Field helpers: values arrive as strings from flags and as YAML scalars from the file.

/** A decimal integer in [min, max], from a number or a string of digits. */
export function intField(min: number, max: number, what = 'an integer'): z.ZodType<number> {
  return z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^[0-9]{1,15}$/, `expected ${what} ${min}..${max}`)
          .transform(Number),
      ],
      {
        error: (iss) => (iss.input === undefined ? `required: ${what} ${min}..${max}` : `expected ${what} ${min}..${max}`),
      },
    )
    .pipe(
      z
        .number({ error: `expected ${what} ${min}..${max}` })
        .int(`expected ${what} ${min}..${max}`)
        .min(min, `expected ${what} ${min}..${max}`)
        .max(max, `expected ${what} ${min}..${max}`),
    );
}

export const portField = (): z.ZodType<number> => intField(0, 65535, 'a port');
export const secondsField = (): z.ZodType<number> => intField(1, 999_999_999, 'seconds');

/** A string the given checker accepts (it throws InputError with the reason otherwise). */
export function checkedString(check: (s: string) => unknown, what: string): z.ZodType<string> {
  return z
    .string({ error: (iss) => (iss.input === undefined ? `required: ${what}` : `expected ${what} (a string; quote it in YAML)`) })
    .superRefine((s, ctx) => {
      try {
        check(s);
      } catch (e) {
        ctx.addIssue({
          code: 'custom',
          message: `expected ${what}: ${e instanceof Error ? e.message.replace(/^--[a-z-]+:?\s*/, '') : String(e)}`,
        });
      }
    });
}

export const boolField = (): z.ZodType<boolean> => z.boolean({ error: 'expected true or false' });

/**
 * A schema straight from a command's options, for commands whose own parser checks the values
 * (imsec load): the keys are exactly the options (an unknown key is an error), values are flag
 * text (numbers are accepted and turned into text), switches are booleans, repeatable options
 * lists; the command's defaults are the schema's. The result has the shape commander gives.
 */
export function optionsSchema(cmd: Command, skip: readonly string[] = ['config', 'printConfig']): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const opt of cmd.options) {
    const key = opt.attributeName();
    if (skip.includes(key)) continue;
    const dflt = opt.defaultValue as unknown;
    let t: z.ZodType;
    if (opt.isBoolean() || opt.negate) t = boolField();
    else if (Array.isArray(dflt)) t = z.array(z.union([z.string(), z.number()]).transform(String), { error: 'expected a list' });
    else t = z.union([z.string(), z.number()], { error: 'expected a string or a number' }).transform(String);
    shape[key] = dflt === undefined ? t.optional() : t.default(dflt as never);
  }
  return z.strictObject(shape);
}
