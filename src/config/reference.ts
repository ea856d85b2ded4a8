// Generates the README's configuration reference from the zod schema (names, types,
// defaults, env variables) and the doc comments in the schema source files.
// `npm run docs:config` rewrites the table between the markers in README.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configLeaves } from './load.ts';

const ROOT = new URL('../../', import.meta.url);
const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';

/** Section -> file holding its schema; '' is the top-level schema. */
const SOURCES: Record<string, string> = {
  '': 'src/config/schema.ts',
  postgres: 'src/postgres/config.ts',
  proxy: 'src/proxy/config.ts',
  raft: 'src/raft/config.ts',
  api: 'src/api/config.ts',
  exactlyOnce: 'src/exactly-once/config.ts',
  failover: 'src/cluster/config.ts',
};

/** `/** text *\/ key:` pairs of one source file from `after` on, first occurrence wins. */
function docComments(file: string, after?: RegExp): Map<string, string> {
  const url = new URL(file, ROOT);
  if (!existsSync(url)) return new Map();
  const whole = readFileSync(url, 'utf8');
  const start = after === undefined ? 0 : Math.max(0, whole.search(after));
  const text = whole.slice(start);
  const comments = new Map<string, string>();
  for (const match of text.matchAll(
    /\/\*\*((?:(?!\*\/)[\s\S])*?)\*\/\s*\n\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/g,
  )) {
    const body = match[1]!
      .split('\n')
      .map((line) => line.replace(/^\s*\*\s?/, '').trim())
      .join(' ')
      .trim();
    if (!comments.has(match[2]!)) comments.set(match[2]!, body);
  }
  return comments;
}

function formatDefault(value: unknown, optional: boolean): string {
  if (value === undefined) return optional ? '(unset)' : '**required**';
  if (typeof value === 'string') return value === '' ? "''" : `\`${value}\``;
  return `\`${JSON.stringify(value)}\``;
}

export function configReferenceTable(): string {
  const docs = new Map(Object.entries(SOURCES).map(([section, file]) => [section, docComments(file)]));
  const rows = configLeaves().map((leaf) => {
    const [section = ''] = leaf.path;
    const key = leaf.path[leaf.path.length - 1]!;
    const fromSection =
      leaf.path.length <= 1
        ? undefined
        : (docs.get(section)?.get(key) ??
          docComments(SOURCES['']!, new RegExp(`\\n\\s+${section}: z`)).get(key));
    const description = (fromSection ?? docs.get('')?.get(key) ?? '').replaceAll('|', '\\|');
    return `| \`${leaf.path.join('.')}\` | ${leaf.type} | ${formatDefault(leaf.defaultValue, leaf.optional)} | \`${leaf.envName}\` | ${description} |`;
  });
  return ['| Option | Type | Default | Environment | Description |', '|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}

export function updateReadme(readmePath = fileURLToPath(new URL('README.md', ROOT))): boolean {
  const readme = readFileSync(readmePath, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${START} ... ${END} markers`);
  const next = `${readme.slice(0, start + START.length)}\n${configReferenceTable()}\n${readme.slice(end)}`;
  if (next === readme) return false;
  writeFileSync(readmePath, next);
  return true;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--write')) {
    process.stdout.write(
      updateReadme() ? 'README.md: configuration reference updated\n' : 'README.md: up to date\n',
    );
  } else {
    process.stdout.write(`${configReferenceTable()}\n`);
  }
}
