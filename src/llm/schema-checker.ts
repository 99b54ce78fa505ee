/**
 * Tool schemas are compiled and arguments validated on their own thread (schema-worker.mjs), never
 * on the event loop that every session's audio shares: a large tool list costs seconds of Ajv code
 * generation, and a schema `pattern` may backtrack without end. One thread per process, started on
 * first use and not keeping the process alive; requests run one at a time, each within its time
 * limit. A request that runs over ends the thread (the only way to stop a runaway regular
 * expression); the requests waiting with it fail, and the next one starts a fresh thread.
 */
import { Worker } from 'node:worker_threads';

type Request = { op: 'compile'; schemas: string[] } | { op: 'validate'; schema: string; args: unknown };
type Reply = { id: number; errors?: (string | null)[]; problem?: string | null; failed?: string };

/** A check ran past its time limit (the thread doing it was ended). */
export class SchemaCheckTimeout extends Error {}

export class SchemaChecker {
  #worker: Worker | null = null;
  #nextId = 0;
  readonly #waiting = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();

  /** Compiles each schema (JSON text); per schema, null or why it is not a valid JSON Schema. */
  async compile(schemas: string[], timeoutMs: number): Promise<(string | null)[]> {
    const reply = await this.#ask({ op: 'compile', schemas }, timeoutMs);
    return reply.errors ?? schemas.map(() => reply.failed ?? 'the schema could not be checked');
  }

  /** What is wrong with `args` against `schema` (JSON text, compiled before), or null when they match. */
  async validate(schema: string, args: unknown, timeoutMs: number): Promise<string | null> {
    const reply = await this.#ask({ op: 'validate', schema, args }, timeoutMs);
    if (reply.failed !== undefined) return `the arguments could not be checked: ${reply.failed}`;
    return reply.problem ?? null;
  }

  /** Ends the thread (the process is going away, or a test is done). */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    this.#failAll(new Error('the schema checker was closed'));
    await worker?.terminate();
  }

  #ask(request: Request, timeoutMs: number): Promise<Reply> {
    const worker = this.#thread();
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      // The limit counts from the request, queue included: a request behind a runaway one fails too.
      const timer = setTimeout(() => {
        this.#failAll(new SchemaCheckTimeout(`the check took longer than ${timeoutMs} ms`));
        if (this.#worker === worker) this.#worker = null;
        void worker.terminate();
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
      worker.postMessage({ id, ...request });
    });
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./schema-worker.mjs', import.meta.url));
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiting = this.#waiting.get(reply.id);
      if (!waiting) return;
      this.#waiting.delete(reply.id);
      clearTimeout(waiting.timer);
      waiting.resolve(reply);
    });
    worker.on('error', (error) => {
      if (this.#worker === worker) this.#worker = null;
      this.#failAll(error);
    });
    worker.on('exit', () => {
      if (this.#worker === worker) {
        this.#worker = null;
        this.#failAll(new Error('the schema checker stopped'));
      }
    });
    this.#worker = worker;
    return worker;
  }

  #failAll(error: Error): void {
    for (const [id, waiting] of this.#waiting) {
      clearTimeout(waiting.timer);
      this.#waiting.delete(id);
      waiting.reject(error);
    }
  }
}

/** The process's one schema thread. */
export const schemaChecker = new SchemaChecker();
