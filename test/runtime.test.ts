// The suite runs on the Node.js .ci/run asked for: vitest forks its workers with process.execPath and
// the CLI helpers spawn process.execPath, so this worker's version is every test's version.
import { describe, expect, it } from 'vitest';

/** A line (`22`) or an exact version (`22.23.5`). */
const expected = process.env.SENTRY_TUNNEL_EXPECT_NODE;
if (!expected) console.info('not checking the Node.js version: SENTRY_TUNNEL_EXPECT_NODE is not set (.ci/run sets it)');

describe.skipIf(!expected)('the test workers', () => {
  it(`run on Node.js ${expected}`, () => {
    const version = new RegExp(`^v${expected?.replaceAll('.', '\\.')}(\\.|$)`);
    expect(process.version, `the worker runs ${process.execPath}`).toMatch(version);
  });
});
