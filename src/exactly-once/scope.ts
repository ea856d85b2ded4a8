// Keys are scoped so that two applications (or two tenants of one) cannot collide:
// by role and database, plus an optional namespace the client declares in its
// startup `options` (`-c pgward.namespace=billing`, as libpq's PGOPTIONS sends it).

export const NAMESPACE_SETTING = 'pgward.namespace';

export interface StartupIdentity {
  user: string;
  database: string;
  /** The raw `options` startup parameter, if any. */
  options?: string;
}

export function keyScope(identity: StartupIdentity): string {
  const namespace = namespaceFromOptions(identity.options ?? '');
  // A separator that cannot appear unescaped keeps (a/b, c) distinct from (a, b/c).
  const parts = [identity.user, identity.database, ...(namespace === null ? [] : [namespace])];
  return parts.map((p) => encodeURIComponent(p)).join('/');
}

/**
 * Reads `-c pgward.namespace=x` or `--pgward.namespace=x` from a startup options
 * string. Options are split on unescaped spaces; `\` escapes the next character
 * (libpq's rule for the options parameter).
 */
export function namespaceFromOptions(options: string): string | null {
  const words = splitOptions(options);
  let namespace: string | null = null;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let setting: string | undefined;
    if (word === '-c') setting = words[++i];
    else if (word.startsWith('-c')) setting = word.slice(2);
    else if (word.startsWith('--')) setting = word.slice(2);
    if (setting === undefined) continue;
    const eq = setting.indexOf('=');
    if (eq === -1) continue;
    if (setting.slice(0, eq).trim().toLowerCase() === NAMESPACE_SETTING) namespace = setting.slice(eq + 1);
  }
  return namespace;
}

function splitOptions(options: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === '\\' && i + 1 < options.length) {
      current += options[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}
