// The tunnel people copy: Express, `express.text({ type: '*/*' })`, split on newlines, check the DSN's
// host and project, forward with `fetch`, answer `{}` (after Sentry's troubleshooting docs). Faithful
// to the original, including its limits: the body parser's 100 kB default and the text decoding that
// mangles binary items. The only change is `http://` and a port, because the fake Sentry is on loopback.
// Usage: node express-handler.js PORT SENTRY_HOST PROJECT_ID
import express from 'express';

const port = Number(process.argv[2]);
const SENTRY_HOST = process.argv[3] ?? '';
const SENTRY_PROJECT_IDS = [process.argv[4] ?? ''];

const app = express();
app.post('/tunnel', express.text({ type: '*/*' }), async (req, res) => {
  try {
    const envelope = req.body as string;
    const piece = envelope.split('\n')[0] ?? '';
    const header = JSON.parse(piece) as { dsn: string };
    const dsn = new URL(header.dsn);
    const projectId = dsn.pathname?.replace('/', '');
    if (dsn.host !== SENTRY_HOST) throw new Error(`Invalid sentry hostname: ${dsn.hostname}`);
    if (!projectId || !SENTRY_PROJECT_IDS.includes(projectId)) throw new Error(`Invalid sentry project id: ${projectId}`);
    const upstreamSentryUrl = `http://${SENTRY_HOST}/api/${projectId}/envelope/`;
    await fetch(upstreamSentryUrl, { method: 'POST', body: envelope });
    res.status(200).json({});
  } catch (e) {
    console.error('error tunneling to sentry', e);
    res.status(500).json({ error: 'error tunneling to sentry' });
  }
});
app.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
