// The tool schemas' thread (plain JavaScript: it runs as it is, from src/ and from dist/). Ajv
// compiles a schema by generating code, tens of ms a tool, and validates with the schema's own
// regular expressions: both happen here, off the event loop every session shares, one request at
// a time. The main thread (schema-checker.ts) bounds each request's time and ends this thread when
// one runs over (a pattern that backtracks without end cannot be stopped any other way).
import { parentPort } from 'node:worker_threads';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule.default ?? addFormatsModule;
/** Compiled validators by schema text, the most recently used last; bounded. */
const validators = new Map();
const MAX_VALIDATORS = 256;

function validatorOf(schemaText) {
  let validate = validators.get(schemaText);
  if (validate) {
    validators.delete(schemaText);
  } else {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validate = ajv.compile(JSON.parse(schemaText));
    if (validators.size >= MAX_VALIDATORS) validators.delete(validators.keys().next().value);
  }
  validators.set(schemaText, validate);
  return validate;
}

function handle(request) {
  if (request.op === 'compile') {
    return {
      errors: request.schemas.map((schemaText) => {
        try {
          validatorOf(schemaText);
          return null;
        } catch (error) {
          return error instanceof Error ? error.message : String(error);
        }
      }),
    };
  }
  const validate = validatorOf(request.schema);
  if (validate(request.args)) return { problem: null };
  return { problem: (validate.errors ?? []).map((e) => `${e.instancePath || '(arguments)'} ${e.message ?? 'is invalid'}`).join('; ') };
}

parentPort.on('message', (request) => {
  try {
    parentPort.postMessage({ id: request.id, ...handle(request) });
  } catch (error) {
    parentPort.postMessage({ id: request.id, failed: error instanceof Error ? error.message : String(error) });
  }
});
