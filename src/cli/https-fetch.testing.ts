// fetch over node:https trusting one certificate, for tests of HTTPS endpoints with self-signed certificates
// (node's own fetch takes no CA without the undici package; the `openai` client takes a `fetch`).
import { request } from 'node:https';
import { Readable } from 'node:stream';

export function fetchTrusting(trusted: Buffer): typeof fetch {
  return (input, init) =>
    new Promise((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const headers = new Headers(init?.headers);
      const req = request(url, { method: init?.method ?? 'GET', headers: Object.fromEntries(headers.entries()), ca: trusted }, (res) => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status: res.statusCode ?? 0, headers: out }));
      });
      req.on('error', reject);
      init?.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end(typeof init?.body === 'string' ? init.body : undefined);
    });
}
