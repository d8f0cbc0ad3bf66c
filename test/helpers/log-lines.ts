// A test tunnel's log lines as they are now (the helper's `logs` property is a snapshot taken when the
// tunnel started, because Object.assign copies a getter's value), and waiting for one to appear.
import type { TestTunnel } from './tunnel.js';

export type LogLine = Record<string, unknown>;

export function logLines(t: TestTunnel): LogLine[] {
  return t
    .rawLogs()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LogLine);
}

/** Resolves with the matching lines once there is one; with none after `timeoutMs`. */
export async function waitForLog(t: TestTunnel, match: (line: LogLine) => boolean, timeoutMs = 2_000): Promise<LogLine[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = logLines(t).filter(match);
    if (lines.length > 0 || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
