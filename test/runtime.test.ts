// The suite runs on the Node.js line .ci/run asked for: vitest forks its workers with process.execPath,
// and the CLI helpers spawn process.execPath, so a worker on the wrong line means every result is.
import { describe, expect, it } from 'vitest';

const expected = process.env.SENTRY_TUNNEL_EXPECT_NODE;
if (!expected) console.info('not checking the Node.js line: SENTRY_TUNNEL_EXPECT_NODE is not set (.ci/run sets it)');

describe.skipIf(!expected)(`the test workers`, () => {
  it(`run on Node.js ${expected}`, () => {
    expect(`${process.version} (${process.execPath})`).toMatch(new RegExp(`^v${expected}\\.`));
  });
});
