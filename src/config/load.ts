// Loads the sidecar configuration: YAML file, then PGWARD_* environment variables,
// then CLI flags, validated by the zod schema. Every problem becomes one line that
// names the option, where it came from and what to do.
//
// Environment mapping: every option `a.bC.dE` is `PGWARD_A_B_C_D_E` (path segments
// joined by `_`, camelCase split into UPPER_SNAKE): `proxy.port` is PGWARD_PROXY_PORT,
// `postgres.probeIntervalMs` is PGWARD_POSTGRES_PROBE_INTERVAL_MS. Numbers and booleans
// (`true`/`false`) are converted; arrays and records (members, postgres.parameters)
// take JSON. Unknown PGWARD_* variables are ignored.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { UserError } from '../errors.ts';
import { type Config, configSchema } from './schema.ts';

export interface ConfigLeaf {
  path: string[];
  /** zod type of the leaf: string, number, boolean, enum, array, record, ... */
  type: string;
  defaultValue: unknown;
  optional: boolean;
  envName: string;
}

export interface LoadOptions {
  /** YAML file; relative paths inside it resolve against its directory. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flag values by dotted path (`log.level`), highest precedence. */
  overrides?: Record<string, unknown>;
}

// biome-ignore lint/suspicious/noExplicitAny: walking zod's internal definition tree.
type AnySchema = any;

function unwrap(schema: AnySchema): { inner: AnySchema; defaultValue: unknown; optional: boolean } {
  let inner = schema;
  let defaultValue: unknown;
  let optional = false;
  for (;;) {
    const def = inner._zod.def;
    if (def.type === 'default') {
      defaultValue = def.defaultValue;
      inner = def.innerType;
    } else if (def.type === 'optional') {
      optional = true;
      inner = def.innerType;
    } else {
      return { inner, defaultValue, optional };
    }
  }
}

export function envNameFor(segments: readonly string[]): string {
  return `PGWARD_${segments.map((s) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')}`;
}

/** Every option of the schema, depth first, with its default: the README reference and env mapping use it. */
export function configLeaves(schema: z.ZodType = configSchema): ConfigLeaf[] {
  const leaves: ConfigLeaf[] = [];
  const walk = (node: AnySchema, at: string[], inheritedDefault: unknown, parentOptional = false) => {
    const unwrapped = unwrap(node);
    const { inner, defaultValue } = unwrapped;
    // Options inside an optional section without defaults are only required when the section is given.
    const optional = unwrapped.optional || (parentOptional && defaultValue === undefined);
    const effectiveDefault = defaultValue ?? inheritedDefault;
    if (inner._zod.def.type === 'object') {
      for (const [key, child] of Object.entries(inner._zod.def.shape as Record<string, AnySchema>)) {
        const childDefault =
          effectiveDefault !== null && typeof effectiveDefault === 'object'
            ? (effectiveDefault as Record<string, unknown>)[key]
            : undefined;
        walk(child, [...at, key], childDefault, optional);
      }
      return;
    }
    leaves.push({
      path: at,
      type: inner._zod.def.type,
      defaultValue: effectiveDefault,
      optional,
      envName: envNameFor(at),
    });
  };
  walk(schema, [], undefined);
  return leaves;
}

function convertEnv(leaf: ConfigLeaf, text: string): unknown {
  switch (leaf.type) {
    case 'number':
      return text.trim() === '' ? text : Number(text);
    case 'boolean':
      return text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : text;
    case 'array':
    case 'record':
    case 'object':
      try {
        return JSON.parse(text);
      } catch {
        throw new UserError(
          `config error: ${leaf.envName} is not valid JSON`,
          `set it to a JSON ${leaf.type}`,
        );
      }
    default:
      return text;
  }
}

function setPath(target: Record<string, unknown>, segments: readonly string[], value: unknown): void {
  let node = target;
  segments.forEach((key, i) => {
    if (i === segments.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  });
}

/** Parses a config already assembled as an object; `describe` names a path's source for messages. */
export function parseConfig(
  raw: unknown,
  describe: (path: string) => string = () => 'in the configuration',
): Config {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
  let at = issue.path.map(String).join('.');
  let problem = issue.message;
  let fix = `correct ${at || 'the configuration'} (see "Configuration reference" in README.md)`;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    at = at ? `${at}.${key}` : key;
    problem = `unknown key`;
    fix = `remove ${at} or correct its spelling (options are listed under "Configuration reference" in README.md)`;
  } else if (issue.code === 'invalid_type' && issue.input === undefined) {
    problem = `required option is missing`;
    fix = `add ${at}`;
  } else if (/port$/i.test(at.split('.').pop() ?? '')) {
    fix = `set ${at} to a TCP port number between 1 and 65535`;
  }
  throw new UserError(`config error: ${at || '(top level)'}: ${problem} (${describe(at)})${more}`, fix);
}

const PATH_KEYS = /(^dataDir$|^bindir$|File$)/;

/** Resolves relative path options against the config file's directory. */
function resolvePaths(node: unknown, baseDir: string): void {
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (typeof value === 'string' && PATH_KEYS.test(key) && !path.isAbsolute(value)) {
      (node as Record<string, unknown>)[key] = path.resolve(baseDir, value);
    } else if (typeof value === 'object') {
      resolvePaths(value, baseDir);
    }
  }
}

export function loadConfig(options: LoadOptions): Config {
  let raw: Record<string, unknown> = {};
  const file = options.file === undefined ? undefined : path.resolve(options.file);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UserError(
        `config error: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        'pass an existing, readable YAML file to --config',
      );
    }
    let parsed: unknown;
    try {
      parsed = YAML.parse(text);
    } catch (error) {
      throw new UserError(
        `config error: ${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`,
        'correct the YAML syntax',
      );
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new UserError(
          `config error: ${file} must hold a YAML mapping`,
          'write options as `section: {key: value}`',
        );
      }
      raw = parsed as Record<string, unknown>;
    }
    resolvePaths(raw, path.dirname(file));
  }
  const sources = new Map<string, string>();
  const env = options.env ?? process.env;
  for (const leaf of configLeaves()) {
    const text = env[leaf.envName];
    if (text === undefined) continue;
    setPath(raw, leaf.path, convertEnv(leaf, text));
    sources.set(leaf.path.join('.'), `from ${leaf.envName}`);
  }
  for (const [dotted, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    setPath(raw, dotted.split('.'), value);
    sources.set(dotted, 'from the command line');
  }
  const describe = (at: string) => {
    for (const [key, source] of sources) if (at === key || at.startsWith(`${key}.`)) return source;
    return file === undefined ? 'in the configuration' : `in ${file}`;
  };
  return parseConfig(raw, describe);
}

/** The PostgreSQL data dir: postgres.dataDir, or <node.dataDir>/pgdata. */
export function postgresDataDir(config: Config): string {
  return config.postgres.dataDir ?? path.join(config.node.dataDir, 'pgdata');
}
