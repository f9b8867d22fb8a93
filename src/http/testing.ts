/**
 * Test support for src/http: a listener with a made-up error shape (`{ problem: { status, code, detail } }`,
 * so tests see that the shape is the service's, not the layer's) on 127.0.0.1, and a raw request helper
 * that sends the path exactly as given (fetch would normalise '..' and percent-encoding away).
 */
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LogFields, Logger } from '../util/log.ts';
import { HttpError } from './errors.ts';
import type { ErrorMapper } from './errors.ts';
import { createListener, createServer } from './listener.ts';
import type { ListenerOptions } from './listener.ts';
import type { Router } from './router.ts';

export interface Problem {
  problem: { status: number; code: string; detail: string };
}

export const problemErrors: ErrorMapper = {
  toHttpError: (error) => (error instanceof HttpError ? error : new HttpError(500, 'oops', 'something broke')),
  toBody: (error): Problem => ({ problem: { status: error.status, code: error.code, detail: error.message } }),
};

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  event: string;
  fields: LogFields | undefined;
}

export function capturingLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (event: string, fields?: LogFields) => void entries.push({ level, event, fields });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, entries };
}

export interface TestServer {
  url: string;
  entries: LogEntry[];
  close(): Promise<void>;
}

/** A plain HTTP server on a free port running createListener with `problemErrors` and logName 'test'. */
export async function startTestListener(router: Router, overrides: Partial<ListenerOptions> = {}): Promise<TestServer> {
  const { logger, entries } = capturingLogger();
  const server = createServer(
    createListener({ router, logger, logName: 'test', errors: problemErrors, maxBodyBytes: 1024, requireJsonContentType: false, ...overrides }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    entries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request with the path sent verbatim; the body, when given, is written in one chunk. */
export function rawRequest(base: string, method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The parsed problem body of an answer, checking its status. */
export function problemOf(answer: RawAnswer, status: number): Problem['problem'] {
  if (answer.status !== status) throw new Error(`expected status ${status}, got ${answer.status}: ${answer.text}`);
  const body = JSON.parse(answer.text) as Problem;
  return body.problem;
}
