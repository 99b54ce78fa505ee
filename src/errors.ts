/**
 * The project's error classes. Each has a stable string `code` (for clients and logs) and a
 * `retryable` flag: only retryable errors are ever retried.
 */
export class S2sError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** The job's input is wrong: the message names the field and the problem. Never retryable. */
export class InvalidInputError extends S2sError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('INVALID_INPUT', message, options);
  }
}

/** Startup configuration (environment, flags, model files) is wrong. The worker must not start. */
export class ConfigError extends S2sError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('CONFIG', message, options);
  }
}

/** A call to the RunPod platform failed. Retryable for 429, 5xx and network errors. */
export class PlatformError extends S2sError {
  readonly status: number | null;

  constructor(message: string, status: number | null, options: { retryable: boolean; cause?: unknown }) {
    super('PLATFORM', message, options);
    this.status = status;
  }
}
