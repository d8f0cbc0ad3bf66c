// A plain node:http client for tests that need control fetch does not give: chunked bodies, exact
// headers, slow writers, aborts.
import { type IncomingHttpHeaders, request } from 'node:http';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  json(): Record<string, unknown>;
}

export interface RawRequest {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Record<string, string | number>;
  /** Chunks written one after another; without Content-Length the body goes chunked. */
  readonly chunks?: readonly (Buffer | string)[];
  readonly body?: Buffer | string;
}

export function send(options: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(options.url, { method: options.method ?? 'POST', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> });
      });
    });
    // The tunnel may answer (and close) before the whole body is written: that is a valid outcome.
    req.on('error', reject);
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end(options.body);
  });
}
