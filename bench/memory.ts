// Resident memory and CPU time of another process: current RSS, the peak over a measured stretch
// (on Linux the kernel's high-water mark, VmHWM reset through /proc/PID/clear_refs, catches spikes
// between samples; elsewhere `ps` is sampled), and CPU seconds used — CPU per request stays
// meaningful when a shared machine makes requests/s noisy.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const MiB = 1024 * 1024;
const hasProc = process.platform === 'linux';

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function rssBytes(pid: number): number {
  if (hasProc) return statusField(pid, 'VmRSS') ?? 0;
  try {
    return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) * 1024;
  } catch {
    return 0;
  }
}

/** Tracks the peak RSS of `pids` (summed) from now until stop(). */
export class PeakRss {
  #peak = 0;
  #timer: NodeJS.Timeout;
  #kernelPeak: boolean;

  constructor(private readonly pids: readonly number[], intervalMs = 100) {
    this.#kernelPeak = hasProc && pids.every(resetHighWaterMark);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    const total = this.pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
    if (total > this.#peak) this.#peak = total;
  }

  /** Peak resident bytes seen since construction. */
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    if (this.#kernelPeak) {
      const kernel = this.pids.reduce((sum, pid) => sum + (statusField(pid, 'VmHWM') ?? 0), 0);
      if (kernel > this.#peak) this.#peak = kernel;
    }
    return this.#peak;
  }
}

function resetHighWaterMark(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU time (user + system) the process has used so far, in seconds; undefined where /proc is missing. */
export function cpuSeconds(pid: number): number | undefined {
  if (!hasProc) return undefined;
  try {
    // Fields 14 and 15 of /proc/PID/stat, counted after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}
