/**
 * Writes test_input.json: one short spoken question (espeak-ng, 16 kHz mono PCM16 WAV, base64)
 * with silence around it, as the RunPod local one-shot and Hub test input.
 * Needs espeak-ng and sox: `apt-get install -y espeak-ng sox`.
 */
import { writeFile } from 'node:fs/promises';
import { makeUtterance, wavOf } from '../test/fixtures/speech.js';

const QUESTION = 'What is the capital of France?';
const utterance = await makeUtterance([{ silenceMs: 400 }, { say: QUESTION }, { silenceMs: 700 }]);
const input = { input: { mode: 'turn', audio: wavOf(utterance.samples, 16_000).toString('base64') } };
await writeFile('test_input.json', JSON.stringify(input) + '\n');
console.log(`test_input.json: "${QUESTION}", ${(utterance.samples.length / 16_000).toFixed(2)} s`);

// The RunPod Hub runs the same turn as its test.
const tests = {
  tests: [{ name: 'spoken_question_turn', input: input.input, timeout: 300_000 }],
  config: {
    gpuTypeId: 'NVIDIA L4',
    gpuCount: 1,
    env: [
      { key: 'S2S_MODELS_DIR', value: '/runpod-volume/s2s-models' },
      { key: 'S2S_DEVICE', value: 'cuda' },
    ],
    allowedCudaVersions: ['12.8', '12.7', '12.6', '12.5', '12.4'],
  },
};
await writeFile('.runpod/tests.json', JSON.stringify(tests, null, 2) + '\n');
console.log('.runpod/tests.json: the same turn as the Hub test');
