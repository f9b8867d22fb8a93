// Is there a TLS server behind an http:// URL? A node told `--coordinator-url http://...` for a coordinator
// that serves HTTPS only sees its connections reset (node's TLS server drops a plain-HTTP request without an
// answer), which looks like a network fault and would be retried forever. One TLS handshake tells them apart.
import { connect } from 'node:tls';

/** Resolves true when a TLS handshake with `url`'s host and port completes (the certificate is not checked:
 *  only whether the server speaks TLS), false on any failure or after `timeoutMs`. */
export function speaksTls(url: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port || 80);
    const socket = connect({ host, port, rejectUnauthorized: false, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }) });
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}
