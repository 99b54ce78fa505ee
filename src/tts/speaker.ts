/**
 * Speaks the pieces of one response in order. Synthesis runs ahead of the reader: as soon as one
 * piece's audio has arrived, the next piece is requested, so our code adds no gap between
 * clauses even while earlier audio is still being sent on. Chunks come out strictly in order.
 */
import { AsyncQueue } from '../util/async-queue.js';
import type { SynthesisOptions, SynthesisStats, Tts } from './tts.js';

export interface SpokenChunk {
  /** Index of the text piece this audio belongs to. */
  piece: number;
  pcm: Int16Array;
}

export interface PieceReport {
  text: string;
  stats: SynthesisStats;
}

export interface Speech extends AsyncIterable<SpokenChunk> {
  /** One entry per piece, filled as pieces are synthesized. */
  readonly pieces: PieceReport[];
}

export function speakInOrder(tts: Tts, texts: AsyncIterable<string>, options: SynthesisOptions): Speech {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const queue = new AsyncQueue<SpokenChunk>(() => stop.abort());
  const pieces: PieceReport[] = [];
  const run = async () => {
    for await (const text of texts) {
      if (signal.aborted) return;
      const synthesis = tts.synthesize(text, { ...options, signal });
      const piece = pieces.push({ text, stats: synthesis.stats }) - 1;
      for await (const pcm of synthesis) {
        if (signal.aborted) return;
        queue.push({ piece, pcm });
      }
    }
  };
  run().then(
    () => queue.end(),
    (error: unknown) => queue.fail(error),
  );
  return Object.assign(queue, { pieces });
}
