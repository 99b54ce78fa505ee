/**
 * A small structured logger. On RunPod Serverless (`jsonLines`), every line is one JSON object
 * `{"requestId","message","level",...fields}` so the console groups lines by job; locally it prints
 * readable lines. Messages are fixed strings; variable data goes in `fields`. Transcripts and
 * prompts go only under keys named `transcript`/`prompt`, never secrets.
 */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

const LEVEL_RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };

export type LogFields = Record<string, unknown>;

export interface LoggerOptions {
  level: LogLevel;
  jsonLines: boolean;
  /** Where lines go; defaults to stderr so stdout stays free for results. */
  write?: (line: string) => void;
}

export class Logger {
  readonly #options: Required<LoggerOptions>;
  readonly #requestId: string | null;

  constructor(options: LoggerOptions, requestId: string | null = null) {
    this.#options = { write: (line) => process.stderr.write(line + '\n'), ...options };
    this.#requestId = requestId;
  }

  /** A logger whose lines carry this job's id as `requestId`. */
  forJob(requestId: string): Logger {
    return new Logger(this.#options, requestId);
  }

  debug(message: string, fields?: LogFields): void {
    this.#log('DEBUG', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.#log('INFO', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.#log('WARN', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.#log('ERROR', message, fields);
  }

  #log(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (LEVEL_RANK[level] < LEVEL_RANK[this.#options.level]) return;
    if (this.#options.jsonLines) {
      this.#options.write(JSON.stringify({ requestId: this.#requestId, message, level, ...fields }));
      return;
    }
    const parts = [new Date().toISOString(), level.padEnd(5), this.#requestId ? `[${this.#requestId}]` : '', message];
    for (const [key, value] of Object.entries(fields ?? {})) {
      parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
    }
    this.#options.write(parts.filter(Boolean).join(' '));
  }
}

/** Turns anything thrown into a one-line message for logs and job errors. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : JSON.stringify(error);
}
