/**
 * Load, short form (the long form is `npm run bench -- soak`): sequential turn jobs on one worker,
 * two concurrent turn jobs sharing the one TTS server, and concurrent live sessions; nothing lost,
 * nothing duplicated, no crash. Resource figures are reported in the summary, not asserted: they
 * belong to the soak, where the run is long enough for a trend to mean something.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { getEventListeners } from 'node:events';
import type { HandlerDefinition } from '../../handler/runtime/types.js';
import { createScriptedHandlerDouble } from '../doubles/scripted-handler-double.js';
import { startHarness } from '../helpers/harness.js';
import { runLoad } from './load-scenario.js';
import { expectNoSecrets } from './secrets.js';
import { Tally } from './tally.js';

const tally = new Tally('load');
afterAll(() => tally.save(inject('robustnessDir')));

describe('load (short form)', () => {
  it('sequential turn jobs, a concurrent pair on one TTS server and two live sessions: every result exactly once', async () => {
    const logs: string[] = [];
    const result = await runLoad({ turnJobs: 5, concurrentPairs: 1, sessions: 2, sessionTurns: 1, tally, logs });
    expect(tally.counts.jobsRun).toBe(1 + 5 + 2);
    expect(tally.counts.sessionsRun).toBe(2);
    expect(result.sessionTurnMs).toHaveLength(2);
    expect(tally.counts.resultsLost).toBe(0);
    expect(tally.counts.resultsDuplicated).toBe(0);
    expect(tally.counts.crashes).toBe(0);
    expect(result.listenerWarnings).toEqual([]);
    expectNoSecrets(logs, { values: result.secrets, audio: true });
  }, 180_000);

  // Defect 3 of issue 14 (fixed on main): at concurrency 1 every job made #waitForSlot add an abort
  // listener to the shutdown signal that was never removed.
  it('the shutdown signal holds no more listeners after 15 jobs than after the first (defect 3)', async () => {
    const double = createScriptedHandlerDouble();
    let shutdown: AbortSignal | undefined;
    const handler: HandlerDefinition = { ...double, handle: (job, signal) => ((shutdown ??= job.shutdown), double.handle(job, signal)) };
    const harness = await startHarness({ handler: { ...handler, concurrency: 1 } });
    try {
      await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
      const before = getEventListeners(shutdown!, 'abort').length;
      for (let n = 0; n < 15; n++) await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
      tally.add('jobsRun', 16);
      expect(getEventListeners(shutdown!, 'abort').length).toBeLessThanOrEqual(before);
    } finally {
      await harness.close();
    }
  }, 60_000);
});
