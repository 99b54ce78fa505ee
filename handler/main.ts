/**
 * Entry point of the RunPod worker (bundled to dist/handler.mjs).
 *
 *   node dist/handler.mjs                      on RunPod (RUNPOD_WEBHOOK_* set): the queue worker
 *   node dist/handler.mjs                      locally: runs test_input.json once
 *   node dist/handler.mjs --test_input '{..}'  runs the given job once
 *   node dist/handler.mjs --rp_serve_api       a local RunPod API on 127.0.0.1:8005 with this worker behind it
 */
import { createS2sHandler } from './s2s-handler.js';
import { startWorkerProcess } from './start.js';

const code = await startWorkerProcess({ argv: process.argv.slice(2), env: process.env, createHandler: createS2sHandler });
process.exit(code);
