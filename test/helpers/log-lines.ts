// Waiting for a log line: request lines are written just after the response, other lines whenever
// the event they report happens.
import type { TestTunnel } from './tunnel.js';

export type LogLine = Record<string, unknown>;

/** Resolves with the matching lines once there is one; with none after `timeoutMs`. */
export async function waitForLog(t: TestTunnel, match: (line: LogLine) => boolean, timeoutMs = 2_000): Promise<LogLine[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = t.logs().filter(match);
    if (lines.length > 0 || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
