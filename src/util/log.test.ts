import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createJsonLogger, createLogger, defaultLogFormat, eventName, spanText } from './log.ts';

function capture(format: 'json' | 'text', level?: 'debug' | 'info' | 'warn' | 'error') {
  const lines: string[] = [];
  const logger = createLogger({ format, ...(level ? { level } : {}), base: { component: 'worker' }, write: (l) => lines.push(l) });
  return { logger, lines };
}

test('json: every line is one JSON object with ts, level, snake_case event and the fields', () => {
  const { logger, lines } = capture('json');
  logger.info('span_loaded', { first: 0, last: 11 });
  logger.warn('worker unreachable; leaving it out', { error: new Error('ECONNREFUSED') });
  logger.info('listening', { message: 'coordinator listening on http://127.0.0.1:8420' });
  assert.ok(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1), 'one line per event');
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(records.map((r) => r.event), ['span_loaded', 'worker_unreachable_leaving_it_out', 'listening']);
  assert.equal(records[0]!.component, 'worker');
  assert.equal(records[0]!.first, 0);
  assert.equal(typeof records[0]!.ts, 'string');
  assert.deepEqual(records[1]!.error, { name: 'Error', message: 'ECONNREFUSED', stack: (records[1]!.error as { stack: string }).stack });
  assert.equal(records[2]!.message, 'coordinator listening on http://127.0.0.1:8420');
});

test('text: readable lines, the message alone where there is one, never a JSON object', () => {
  const { logger, lines } = capture('text');
  logger.info('listening', { message: 'coordinator listening on http://127.0.0.1:8420' });
  logger.info('span_loaded', { first: 0, last: 11, source: 'local file' });
  logger.warn('worker_unreachable', { nodeId: 'abc', error: new Error('ECONNREFUSED') });
  logger.error('command_failed', { message: 'sharedllm node: no such file' });
  assert.deepEqual(lines, [
    'coordinator listening on http://127.0.0.1:8420\n',
    'worker: span_loaded first=0 last=11 source="local file"\n',
    'warn: worker: worker_unreachable nodeId=abc error="ECONNREFUSED"\n',
    'error: sharedllm node: no such file\n',
  ]);
  assert.ok(lines.every((l) => !l.startsWith('{')));
});

test('levels below the minimum are dropped in both formats', () => {
  for (const format of ['json', 'text'] as const) {
    const { logger, lines } = capture(format, 'warn');
    logger.debug('a');
    logger.info('b');
    logger.warn('c');
    logger.error('d');
    assert.equal(lines.length, 2, format);
  }
});

test('event names are snake_case; spans are written [first, last)', () => {
  assert.equal(eventName('span_loaded'), 'span_loaded');
  assert.equal(eventName('span loaded'), 'span_loaded');
  assert.equal(eventName('spanLoaded'), 'span_loaded');
  assert.equal(eventName('worker failed; re-planning its span'), 'worker_failed_re_planning_its_span');
  assert.equal(eventName('HTTP error'), 'http_error');
  assert.equal(spanText(0, 11), '[0, 11)');
});

test('the default format: text on a terminal, JSON lines otherwise; createJsonLogger is always JSON', () => {
  assert.equal(defaultLogFormat({ isTTY: true }), 'text');
  assert.equal(defaultLogFormat({ isTTY: false }), 'json');
  assert.equal(defaultLogFormat({}), 'json');
  const lines: string[] = [];
  createJsonLogger({ write: (l) => lines.push(l) }).info('x');
  assert.equal((JSON.parse(lines[0]!) as { event: string }).event, 'x');
});
