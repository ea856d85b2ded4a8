import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyScope, namespaceFromOptions } from '../../src/exactly-once/scope.ts';

test('scope is role + database, plus the namespace from startup options', () => {
  assert.equal(keyScope({ user: 'app', database: 'shop' }), 'app/shop');
  assert.equal(
    keyScope({ user: 'app', database: 'shop', options: '-c pgward.namespace=billing' }),
    'app/shop/billing',
  );
  assert.notEqual(keyScope({ user: 'a/b', database: 'c' }), keyScope({ user: 'a', database: 'b/c' }));
});

test('namespace forms: -c x=y, -cx=y, --x=y, escaped spaces', () => {
  assert.equal(namespaceFromOptions('-c pgward.namespace=a'), 'a');
  assert.equal(namespaceFromOptions('-cpgward.namespace=b -c work_mem=1MB'), 'b');
  assert.equal(namespaceFromOptions('--pgward.namespace=c'), 'c');
  assert.equal(namespaceFromOptions('-c pgward.namespace=two\\ words'), 'two words');
  assert.equal(namespaceFromOptions('-c search_path=x'), null);
  assert.equal(namespaceFromOptions(''), null);
});
