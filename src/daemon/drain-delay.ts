// The pause between "not ready" and "closed" on shutdown: orchestrators and load balancers stop sending
// a moment after /readyz turns 503, so the listener keeps serving that long (Kubernetes' preStop sleep).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../observability/logger.js';

export async function drainDelay(ms: number, logger: Logger): Promise<void> {
  if (ms <= 0) return;
  logger.info({ drainDelayMs: ms }, 'draining: /readyz answers 503, still serving until server.drainDelayMs has passed');
  await sleep(ms);
}
