/**
 * The turn model's thread: Whisper features and one onnxruntime session, off the main event loop
 * (onnxruntime-node's run() blocks its thread for the whole inference, 10-100 ms on CPU).
 *
 * Messages in:  { type: 'load', model: ArrayBuffer, threads }, then { type: 'predict', id, audio }, and
 *               { type: 'close' } (the thread ends after the run in progress: terminating it mid-run
 *               aborts the whole process, onnxruntime's finished run finding its environment gone)
 * Messages out: { type: 'ready' } | { type: 'load_failed', message }
 *               { type: 'verdict', id, probability, featuresMs, modelMs } | { type: 'failed', id, message }
 */
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { N_FRAMES, N_MELS, WhisperFeatures, turnWindow } from './whisper-features.js';

export type TurnWorkerRequest = { type: 'load'; model: ArrayBuffer; threads: number } | { type: 'predict'; id: number; audio: Float32Array } | { type: 'close' };
export type TurnWorkerReply =
  | { type: 'ready'; input: string; output: string }
  | { type: 'load_failed'; message: string }
  | { type: 'verdict'; id: number; probability: number; featuresMs: number; modelMs: number }
  | { type: 'failed'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('smart-turn-worker.ts runs as a worker thread');
const features = new WhisperFeatures();
let session: ort.InferenceSession | null = null;
const reply = (message: TurnWorkerReply) => port.postMessage(message);

/** One message at a time, in order: a close waits for the run before it. */
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: TurnWorkerRequest) => {
  queue = queue.then(() => handle(message));
});

async function handle(message: TurnWorkerRequest): Promise<void> {
  if (message.type === 'load') return load(message.model, message.threads);
  if (message.type === 'predict') return predict(message.id, message.audio);
  await session?.release().catch(() => undefined);
  session = null;
  port!.close();
}

async function load(model: ArrayBuffer, threads: number): Promise<void> {
  try {
    session = await ort.InferenceSession.create(new Uint8Array(model), {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const [input, output] = [session.inputNames[0], session.outputNames[0]];
    if (session.inputNames.length !== 1 || input !== 'input_features' || output === undefined) {
      throw new Error(`expected one input named input_features and one output, found inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}]`);
    }
    reply({ type: 'ready', input, output });
  } catch (error) {
    reply({ type: 'load_failed', message: (error as Error).message });
  }
}

async function predict(id: number, audio: Float32Array): Promise<void> {
  try {
    if (!session) throw new Error('the turn model is not loaded');
    const t0 = performance.now();
    const input = features.compute(turnWindow(audio));
    const t1 = performance.now();
    const result = await session.run({ input_features: new ort.Tensor('float32', input, [1, N_MELS, N_FRAMES]) });
    const probability = (result[session.outputNames[0]!]!.data as Float32Array)[0]!;
    // The model ends in a sigmoid: anything else is a wrong file, not a verdict.
    if (!(probability >= 0 && probability <= 1)) throw new Error(`the turn model gave ${probability}, not a probability`);
    reply({ type: 'verdict', id, probability, featuresMs: t1 - t0, modelMs: performance.now() - t1 });
  } catch (error) {
    reply({ type: 'failed', id, message: (error as Error).message });
  }
}
