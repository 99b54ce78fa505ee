/** A worker process with the scripted handler double, for tests that need a real process (signals). */
import { startWorkerProcess } from '../../handler/start.js';
import { createScriptedHandlerDouble } from './scripted-handler-double.js';

const code = await startWorkerProcess({
  argv: process.argv.slice(2),
  env: process.env,
  createHandler: async () => createScriptedHandlerDouble(),
});
process.exit(code);
