// `sentry-tunnel send-test`: send a real test event through a running tunnel (see the operator
// commands issue for the full diagnosis); this first version reports that it is not available yet.
export async function sendTest(_options: Record<string, unknown>): Promise<number> {
  process.stderr.write('send-test is not implemented yet.\n');
  return 2;
}
