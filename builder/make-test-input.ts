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
