// Spool test helpers: throw-away spool directories, what is in them, and bounded waiting.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A fresh directory under the OS temp dir; removed by `removeTempDirs`. */
export async function tempDir(prefix = 'sentry-tunnel-spool-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Names of complete spool entries, oldest first. */
export async function entryFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.envelope')).sort();
}

/** The body bytes of a spool entry (everything after the metadata line). */
export async function entryBody(dir: string, name: string): Promise<Buffer> {
  const bytes = await readFile(join(dir, name));
  return bytes.subarray(bytes.indexOf(0x0a) + 1);
}

/** Polls `check` every 10 ms until it returns true; fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
