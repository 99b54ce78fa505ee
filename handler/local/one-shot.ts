/**
 * Local one-shot mode, as RunPod users know it: with no RUNPOD_WEBHOOK_GET_JOB, run the job in
 * `test_input.json` (or `--test_input '<json>'`) once, print the result, exit 0 (1 on error).
 */
import { readFile } from 'node:fs/promises';
import { errorMessage, type Logger } from '../../src/log/logger.js';
import { consumeUntilAborted } from '../runtime/worker.js';
import type { HandlerDefinition } from '../runtime/types.js';

export async function runOneShot(handler: HandlerDefinition, testInput: string | null, log: Logger, signal: AbortSignal): Promise<number> {
  let job: { id?: unknown; input?: unknown };
  try {
    const text = testInput ?? (await readFile('test_input.json', 'utf8'));
    job = JSON.parse(text) as typeof job;
  } catch (error) {
    log.error('no test input: pass --test_input \'{"input": {...}}\' or create test_input.json', { error: errorMessage(error) });
    return 1;
  }
  if (job.input === undefined) {
    log.error('the test input has no "input" field: expected {"input": {...}}');
    return 1;
  }
  const id = typeof job.id === 'string' ? job.id : 'local-test';
  const jobLog = log.forJob(id);
  const events: unknown[] = [];
  try {
    await consumeUntilAborted(
      handler.handle({ id, input: job.input, log: jobLog, progress: async () => undefined, shutdown: signal }, signal),
      signal,
      async (event) => {
        events.push(event);
        const typed = event as { type?: unknown; url?: unknown; realtime_url?: unknown; token?: unknown };
        // A session job waits for a client: say where to connect while it waits.
        if (typed.type === 'session') jobLog.info('session open: connect a client', { url: typed.url, realtime_url: typed.realtime_url, token: typed.token });
        else jobLog.debug('event', { type: typed.type });
      },
    );
  } catch (error) {
    jobLog.error('job failed', { error: errorMessage(error) });
    process.stdout.write(JSON.stringify({ error: errorMessage(error) }) + '\n');
    return 1;
  }
  process.stdout.write(JSON.stringify({ output: events }) + '\n');
  jobLog.info('job finished', { events: events.length });
  return 0;
}
