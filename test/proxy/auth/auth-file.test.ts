import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  AuthFileError,
  loadAuthFile,
  parseAuthFile,
  scramSecretOf,
} from '../../../src/proxy/auth/auth-file.ts';
import { formatScramSecret, scramSecretFromPassword } from '../../../src/proxy/auth/scram.ts';

const salt = Buffer.from('0123456789abcdef');

describe('auth file', () => {
  it('reads SCRAM secrets, plain passwords, doubled quotes and comments', () => {
    const secret = scramSecretFromPassword('pw', salt);
    const users = parseAuthFile(
      [
        '; PgBouncer-style comment',
        '# another comment',
        '',
        `"alice" "${formatScramSecret(secret)}"`,
        '  "bob"   "he said ""hi"""  ',
        '"carol" ""',
      ].join('\n'),
      'users.txt',
    );
    assert.deepEqual([...users.keys()], ['alice', 'bob', 'carol']);
    assert.deepEqual(users.get('alice'), { kind: 'scram', secret });
    assert.deepEqual(users.get('bob'), { kind: 'plain', password: 'he said "hi"' });
    assert.deepEqual(scramSecretOf(users.get('bob')!, salt), scramSecretFromPassword('he said "hi"', salt));
  });

  const bad: Array<[string, string, RegExp]> = [
    ['an unquoted line', 'alice pw', /users\.txt:2: expected "user" "password-or-SCRAM-secret"/],
    ['a missing secret', '"alice"', /users\.txt:2: expected/],
    ['trailing text', '"alice" "pw" extra', /users\.txt:2: expected/],
    ['an unterminated quote', '"alice" "pw', /users\.txt:2: expected/],
    [
      'a broken SCRAM secret',
      '"alice" "SCRAM-SHA-256$4096:abc"',
      /users\.txt:2: malformed SCRAM-SHA-256 secret/,
    ],
    [
      'an md5 hash',
      `"alice" "md5${'a'.repeat(32)}"`,
      /users\.txt:2: an md5 hash cannot verify SCRAM-SHA-256/,
    ],
    ['a duplicate user', '"x" "1"\n"x" "2"', /users\.txt:3: user "x" is listed twice/],
    ['an empty user', '"" "pw"', /users\.txt:2: the user name is empty/],
  ];
  for (const [what, line, pattern] of bad) {
    it(`names the file and line of ${what}`, () => {
      assert.throws(
        () => parseAuthFile(`; header\n${line}`, 'users.txt'),
        (e: unknown) => e instanceof AuthFileError && pattern.test(e.message),
      );
    });
  }

  it('loads from disk, and a missing file names its path', (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgward-authfile-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'users.txt');
    writeFileSync(file, '"alice" "pw"\n');
    assert.equal(loadAuthFile(file).size, 1);
    assert.throws(() => loadAuthFile(path.join(dir, 'missing.txt')), /cannot read auth file .*missing\.txt/);
  });
});
