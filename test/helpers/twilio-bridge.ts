/**
 * A caller talking over an answer on a G.711 Realtime session, through a bridge that behaves like
 * Twilio's sample (twilio-samples/speech-assistant-openai-realtime-api-node): it forwards each audio
 * delta to Twilio with a mark, and on `speech_started` sends Twilio `clear` only while marks are
 * outstanding (audio not yet played); Twilio plays what it holds at 8000 bytes a second. The caller's
 * line is open: 20 ms mu-law frames in real time, silence until the answer has played two seconds, then
 * words. Used by the Realtime test (its behaviour) and the session bench (the time heard, a goal).
 */
import { makeUtterance, run } from '../fixtures/speech.js';
import { RealtimeTestClient } from './realtime-client.js';

export interface BargeInOverBridge {
  /** The old answer the caller heard after starting to talk: until Twilio was cleared or ran out. */
  heardMs: number;
  /** Whether the bridge cleared Twilio (speech_started came while the answer's audio was still queued there). */
  cleared: boolean;
  /** The interrupted response's final status. */
  status: string;
  /** Audio deltas of the old answer that came after `speech_started` (the worker holds output at voice onset). */
  deltasAfterSpeechStarted: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 8 kHz mu-law bytes of speech said by espeak-ng. */
async function mulawSpeech(text: string): Promise<Buffer> {
  const utterance = await makeUtterance([{ say: text }, { silenceMs: 800 }], 8_000);
  return run('sox', ['-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', '8000', '-', '-t', 'raw', '-e', 'mu-law', '-b', '8', '-c', '1', '-r', '8000', '-'], Buffer.from(utterance.samples.buffer));
}

/** One barge-in on a new session at `url` (a `/v1/realtime` URL of the worker). */
export async function bargeInOverTwilioBridge(url: string, token: string): Promise<BargeInOverBridge> {
  const client = await RealtimeTestClient.connect(url, { token });
  try {
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcmu' } }, output: { format: { type: 'audio/pcmu' } } } } });
    await client.waitFor('session.updated');
    let playedUntil = 0;
    let clearedAt: number | null = null;
    let answerId: string | null = null;
    let speechStarted = false;
    let deltasAfterSpeechStarted = 0;
    client.ws.on('message', (data) => {
      const event = JSON.parse(data.toString()) as { type: string; delta?: string; response_id?: string };
      const now = performance.now();
      if (event.type === 'response.output_audio.delta' && speechStarted && event.response_id === answerId) deltasAfterSpeechStarted++;
      if (event.type === 'input_audio_buffer.speech_started' && answerId !== null) speechStarted = true;
      if (event.type === 'response.output_audio.delta' && clearedAt === null && (answerId ??= event.response_id!) === event.response_id) {
        playedUntil = Math.max(playedUntil, now) + Buffer.from(event.delta!, 'base64').length / 8;
      }
      if (event.type === 'input_audio_buffer.speech_started' && answerId !== null && clearedAt === null && playedUntil > now) clearedAt = now;
    });
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Tell me a story.' }] } });
    client.send({ type: 'response.create' });
    const words = await mulawSpeech('Wait, wait, I have another question for you.');
    const silence = Buffer.alloc(160, 0xff);
    const started = performance.now();
    let spokeAt: number | null = null;
    for (let frame = 0, word = 0; word < words.length; frame++) {
      const wait = started + frame * 20 - performance.now();
      if (wait > 0) await sleep(wait);
      if (spokeAt === null && answerId !== null && playedUntil - performance.now() > 0 && performance.now() - started > 2_000) spokeAt = performance.now();
      const chunk = spokeAt === null ? silence : words.subarray(word, (word += 160));
      client.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
      if (frame > 1_000) throw new Error('the answer never played');
    }
    const done = await client.waitFor((e) => e.type === 'response.done' && (e['response'] as { id: string }).id === answerId, 30_000);
    return {
      heardMs: Math.min(clearedAt ?? Infinity, playedUntil) - spokeAt!,
      cleared: clearedAt !== null,
      status: (done['response'] as { status: string }).status,
      deltasAfterSpeechStarted,
    };
  } finally {
    client.ws.close();
  }
}
