/**
 * Finds the user's turn in audio that is already complete (a turn job): runs the endpointer over
 * it and transcribes the speech. ASR starts speculatively at each `silence_start`, as it would in
 * a live session where it hides inside the endpoint wait; a speculative result is used only when
 * the turn closes on exactly the audio it heard, and thrown away if speech resumed.
 */
import type { Asr, Transcript } from '../asr/asr.js';
import { concatFloat32 } from '../audio/pcm.js';
import { samplesToMs, type Endpointer } from '../vad/endpointer.js';

/** Audio is fed in slices like a live stream would arrive, so speculation can start early. */
const FEED_SAMPLES = 4_096;

export interface HeardTurn {
  segments: { startMs: number; endMs: number }[];
  transcript: string;
  vadMs: number;
  endpointMs: number;
  asrMs: number;
  /** ASR time left after the turn closed (zero when speculation finished in time). */
  asrCriticalMs: number;
  asrSpeculative: boolean;
  /** performance.now() when the turn closed: the reference point of first_audio_ms. */
  closedAt: number;
  /** performance.now() when the transcript was ready. */
  transcriptAt: number;
}

interface Speculation {
  endSample: number;
  startedAt: number;
  result: Promise<Transcript>;
}

export async function listenForTurn(endpointer: Endpointer, asr: Asr, samples: Float32Array, signal: AbortSignal): Promise<HeardTurn | null> {
  const vadBefore = endpointer.vadMs;
  const segments: HeardTurn['segments'] = [];
  // Held in one object so the event handler below can update it.
  const state: {
    speculation: Speculation | null;
    firstStart: number | null;
    closed: { endSample: number; closedAtSample: number; at: number } | null;
  } = {
    speculation: null,
    firstStart: null,
    closed: null,
  };
  const parts: Float32Array[] = [];

  const handle = (events: Awaited<ReturnType<Endpointer['push']>>) => {
    for (const event of events) {
      if (event.type === 'speech_start') {
        state.firstStart ??= event.startSample;
        state.speculation = null;
      } else if (event.type === 'speech_resumed') {
        state.speculation = null;
      } else if (event.type === 'silence_start') {
        // Only a single-segment turn can be transcribed from the endpointer's audio alone.
        state.speculation =
          segments.length === 0 ? { endSample: event.endSample, startedAt: performance.now(), result: asr.transcribe(event.audio, { signal }) } : null;
        state.speculation?.result.catch(() => undefined);
      } else if (event.type === 'speech_end') {
        segments.push({ startMs: samplesToMs(event.startSample), endMs: samplesToMs(event.endSample) });
        parts.push(event.audio);
        state.closed = { endSample: event.endSample, closedAtSample: event.closedAtSample, at: performance.now() };
      }
    }
  };

  for (let at = 0; at < samples.length; at += FEED_SAMPLES) {
    signal.throwIfAborted();
    handle(await endpointer.push(samples.subarray(at, at + FEED_SAMPLES)));
  }
  handle(endpointer.flush());
  const { closed: last, speculation } = state;
  if (!last || state.firstStart === null) return null;
  const closedAt = last.at;
  const usable = segments.length === 1 && speculation !== null && speculation.endSample === last.endSample;
  let transcript: Transcript;
  let asrStartedAt: number;
  if (usable) {
    transcript = await speculation.result;
    asrStartedAt = speculation.startedAt;
  } else {
    asrStartedAt = performance.now();
    transcript = await asr.transcribe(concatFloat32(parts), { signal });
  }
  const transcriptAt = performance.now();
  return {
    segments,
    transcript: transcript.text,
    vadMs: endpointer.vadMs - vadBefore,
    endpointMs: samplesToMs(last.closedAtSample - last.endSample),
    asrMs: transcript.asrMs,
    asrCriticalMs: Math.max(0, transcriptAt - Math.max(closedAt, asrStartedAt)),
    asrSpeculative: usable,
    closedAt,
    transcriptAt,
  };
}

