/**
 * When a session must end without its client asking: after `idleTimeoutMs` without the client (never
 * while an answer is playing), after `maxDurationMs` in all, when the worker stops its job (`signal`),
 * and `shutdownGraceMs` after the worker starts shutting down (the client is warned first). Each calls
 * `end` with its reason; the session core owns what ending means.
 */
import type { SessionEndReason, SessionLimits } from './core-types.js';

export type DeadlineLimits = Pick<SessionLimits, 'idleTimeoutMs' | 'maxDurationMs' | 'shutdownGraceMs'>;

export interface DeadlineHooks {
  end(reason: SessionEndReason): void;
  /** An answer is playing: the idle clock does not run out under it. */
  answerPlaying(): boolean;
  /** The worker is going away: tell the client it has `graceMs` left. */
  shuttingDown(graceMs: number): void;
}

export class SessionDeadlines {
  readonly #limits: DeadlineLimits;
  readonly #hooks: DeadlineHooks;
  #idle: NodeJS.Timeout | null = null;
  #max: NodeJS.Timeout | null = null;
  #cleared = false;

  /** `stop` fires when the session ends, whatever ended it: the listeners on `signal` and `shutdown` go with it. */
  constructor(limits: DeadlineLimits, hooks: DeadlineHooks, stop: AbortSignal, signal: AbortSignal, shutdown?: AbortSignal) {
    this.#limits = limits;
    this.#hooks = hooks;
    signal.addEventListener('abort', () => hooks.end('stopped'), { once: true, signal: stop });
    if (signal.aborted) queueMicrotask(() => hooks.end('stopped'));
    shutdown?.addEventListener(
      'abort',
      () => {
        // Let the answer in progress finish, then end.
        hooks.shuttingDown(limits.shutdownGraceMs);
        setTimeout(() => hooks.end('stopped'), limits.shutdownGraceMs).unref();
      },
      { once: true, signal: stop },
    );
  }

  /** Starts the max-duration and idle clocks (the session runs). */
  start(): void {
    this.#max = setTimeout(() => this.#hooks.end('max_duration'), this.#limits.maxDurationMs);
    this.touch();
  }

  /** The client is there: the idle clock restarts. */
  touch(): void {
    if (this.#cleared) return;
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#hooks.answerPlaying()) this.touch();
      else this.#hooks.end('idle_timeout');
    }, this.#limits.idleTimeoutMs);
  }

  /** The session ended: no clock fires from now on. */
  clear(): void {
    this.#cleared = true;
    if (this.#idle) clearTimeout(this.#idle);
    if (this.#max) clearTimeout(this.#max);
  }
}
