/**
 * Live-session barge-in: the time from the client audio frame that completes the speech onset
 * (Silero confirms speech after min_speech_ms) to the `paused` event reaching the client, measured
 * on loopback with the test profile's real engines. Also the session's first audio after the
 * endpoint (first_audio_ms - endpoint_ms) on the tiny models. And a G.711 caller talking over an answer
 * through a bridge like Twilio's sample: how much of the old answer it hears (test/helpers/twilio-bridge.ts).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { float32ToPcm16 } from '../src/audio/pcm.js';
import { makeUtterance } from '../test/fixtures/speech.js';
import { SessionClient } from '../test/helpers/session-client.js';
import { testProfileHandler } from '../test/helpers/test-profile.js';
import { bargeInOverTwilioBridge } from '../test/helpers/twilio-bridge.js';
import { summarize, type BenchResult } from './stats.js';

const TOKEN = 'bench-session-token-0123456789';

export async function benchSession(): Promise<BenchResult[]> {
  const handler = await testProfileHandler();
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?token=${TOKEN}`;
  const question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 600 }]);
  const interruption = await makeUtterance([{ say: 'Wait, I have another question.' }]);
  const pauses: number[] = [];
  const afterEndpoint: number[] = [];
  let firstTurnAfterEndpoint = Number.NaN;
  const afterSpeechEnd: number[] = [];
  const heardOverBridge: number[] = [];
  const realtimeUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/realtime`;
  try {
    for (let round = 0; round < 12; round++) {
      const client = await SessionClient.connect(url);
      await client.sendAudio(question.samples);
      await client.waitForAudio();
      let lastSentAt = 0;
      let at = 0;
      for (; at < interruption.samples.length && !client.events('paused').length; at += 512) {
        const pcm = float32ToPcm16(interruption.samples.subarray(at, at + 512));
        lastSentAt = performance.now();
        client.ws.send(new Uint8Array(pcm.buffer));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await client.waitFor((e) => e.type === 'paused');
      // The rest of the interruption, so the answer is cut and the turn ends.
      await client.sendAudio(interruption.samples.subarray(at));
      const paused = client.received.find((r) => r.kind === 'event' && r.event.type === 'paused')!;
      pauses.push(paused.at - lastSentAt);
      const metrics = await client.waitFor((e) => e.type === 'metrics' && e['turn'] === 0);
      // Round 0 is the process's first turn (after the start-up warm-up).
      const after = (metrics['first_audio_ms'] as number) - (metrics['endpoint_ms'] as number);
      if (round === 0) firstTurnAfterEndpoint = after;
      else afterEndpoint.push(after);
      client.ws.close();
    }
    // Streamed at real time in 20 ms frames: how long after `speech_end` the first answer audio arrives
    // (the answer was started on the speculative transcript during the endpoint wait).
    for (let round = 0; round < 8; round++) {
      const client = await SessionClient.connect(url);
      await client.sendAudio(question.samples, { frameMs: 20, realtime: true });
      await client.waitForAudio();
      const speechEnd = client.received.find((r) => r.kind === 'event' && r.event.type === 'speech_end')!;
      const firstAudio = client.received.find((r) => r.kind === 'audio')!;
      afterSpeechEnd.push(firstAudio.at - speechEnd.at);
      client.ws.close();
    }
    // A G.711 caller talking over the answer through a bridge like Twilio's sample (issue 21's goal).
    for (let round = 0; round < 6; round++) {
      const bargeIn = await bargeInOverTwilioBridge(realtimeUrl, TOKEN);
      if (bargeIn.status !== 'cancelled') throw new Error(`the interrupted answer ended ${bargeIn.status}, not cancelled`);
      heardOverBridge.push(bargeIn.heardMs);
    }
  } finally {
    await handler.dispose();
    server.closeAllConnections();
    server.close();
  }
  return [
    summarize('session barge-in: onset frame -> paused at client', 'ms', pauses),
    summarize('session first audio after the endpoint (tiny models), later turns', 'ms', afterEndpoint),
    summarize('session first audio after the endpoint (tiny models), first turn after start', 'ms', [firstTurnAfterEndpoint]),
    summarize('session speech_end -> first answer audio at the client (tiny models, 20 ms frames)', 'ms', afterSpeechEnd, { median: 50 }),
    summarize('G.711 barge-in over a Twilio-like bridge: old answer heard after the caller starts', 'ms', heardOverBridge, { p90: 200 }),
  ];
}
