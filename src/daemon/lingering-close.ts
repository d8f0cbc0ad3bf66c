// nginx's "lingering close" for answers given before the body was read: the connection is not torn
// down while the client is still sending, or the kernel would reset it (unread bytes) and the client
// could lose the answer; the rest is read and discarded, within a time and a byte budget, then closed.
import type { IncomingMessage } from 'node:http';

/** nginx reads for up to lingering_time (30 s); a tunnel's refused uploads are small and on fast links. */
export const LINGER_MS = 5_000;
export const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * Call once an answer that says Connection: close was written for a request whose body is not read to
 * the end: node:http then ends the socket through destroySoon, which is replaced for this one socket.
 */
export function lingerOnClose(req: IncomingMessage, ms = LINGER_MS, maxBytes = LINGER_BYTES): void {
  if (req.complete) return;
  const socket = req.socket;
  socket.destroySoon = () => {
    // The answer and then our FIN go out; reading goes on (http sockets are half-open) until the client is done.
    socket.end();
    let discarded = 0;
    const close = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(close, ms);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > maxBytes) close();
    });
    req.once('end', close);
    req.once('error', close);
    socket.once('close', () => clearTimeout(timer));
    req.resume();
  };
}
