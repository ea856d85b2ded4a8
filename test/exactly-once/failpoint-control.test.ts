// The failpoint control behind the test-only admin routes: arm, see requests
// reach the point, release them; reset never leaves a request paused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FailpointControl,
  failpoint,
  failpointsActive,
  testFailpointsEnabled,
} from '../../src/exactly-once/failpoints.ts';

test('armed for two requests: reached once both are paused; release lets both go on', async () => {
  const control = new FailpointControl();
  control.arm('before-fence', 2);
  assert.equal(failpointsActive, true);
  let done = 0;
  const first = failpoint('before-fence').then(() => done++);
  assert.deepEqual(control.state(), { 'before-fence': { count: 2, reached: false } });
  const second = failpoint('before-fence').then(() => done++);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(control.state(), { 'before-fence': { count: 2, reached: true } });
  assert.equal(done, 0);
  // A third request is not paused: the point disarmed itself after two.
  await failpoint('before-fence');
  assert.equal(control.release('before-fence'), true);
  await Promise.all([first, second]);
  assert.equal(done, 2);
  assert.equal(control.release('before-fence'), false);
  assert.equal(failpointsActive, false);
});

test('reset releases paused requests and disarms the rest', async () => {
  const control = new FailpointControl();
  control.arm('commit-sent', 1);
  control.arm('between-fence-and-commit', 5);
  const paused = failpoint('commit-sent');
  control.reset();
  await paused;
  assert.equal(failpointsActive, false);
  assert.deepEqual(control.state(), {});
  await failpoint('between-fence-and-commit');
});

test('the admin routes are enabled only by PGWARD_TEST_FAILPOINTS=1', () => {
  assert.equal(testFailpointsEnabled({}), false);
  assert.equal(testFailpointsEnabled({ PGWARD_TEST_FAILPOINTS: '0' }), false);
  assert.equal(testFailpointsEnabled({ PGWARD_TEST_FAILPOINTS: 'true' }), false);
  assert.equal(testFailpointsEnabled({ PGWARD_TEST_FAILPOINTS: '1' }), true);
});
