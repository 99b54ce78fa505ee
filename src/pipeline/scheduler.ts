/**
 * One scheduler for the engines every conversation on the worker shares. Each engine has a lane
 * with a number of slots (work running on it at once); work beyond them waits in the lane, and a
 * freed slot goes to the most urgent waiting work: a confirmed turn's before speculative work
 * (speculative ASR, preemptive answers) before partial transcripts, then first come first served.
 *
 * Cancellation is the caller's AbortSignal and nothing else: work whose signal fires while it
 * waits (its conversation left, was cut by barge-in or cancelled) leaves the lane at once and
 * never runs. A partial transcript never waits: unless its engine is idle it is skipped.
 *
 * Preemption backs off under load (`mayPreempt`): a speculative answer starts only on idle
 * capacity, while no confirmed work waits on any engine and the LLM and the TTS each have a free
 * slot; otherwise the turn is answered once it is confirmed, and the engines are left to the
 * confirmed answers.
 */
import { S2sError } from '../errors.js';
import { levelOf, type PriorityLike, type WorkClass } from '../util/work-priority.js';

export { WorkPriority, type PriorityLike, type WorkClass } from '../util/work-priority.js';

const RANK: Record<WorkClass, number> = { confirmed: 0, speculative: 1, partial: 2 };

/** A partial transcript found its engine at work: it is skipped, not queued. */
export class WorkSkippedError extends S2sError {
  constructor(lane: string) {
    super('WORK_SKIPPED', `${lane}: busy, a partial transcript is skipped rather than queued`);
  }
}

interface Waiter {
  priority: PriorityLike | undefined;
  seq: number;
  queuedAt: number;
  grant: (slot: Slot) => void;
}

/** A slot held on a lane: `waitMs` is how long the work waited for it; `release()` frees it (once). */
export interface Slot {
  readonly waitMs: number;
  release(): void;
}

export interface LaneStats {
  /** Work that got a slot. */
  started: number;
  /** Work whose signal fired while it waited: it never ran. */
  dropped: number;
  /** Partial transcripts skipped because the lane was busy. */
  skipped: number;
}

export class EngineLane {
  #active = 0;
  #seq = 0;
  readonly #waiting: Waiter[] = [];
  readonly stats: LaneStats = { started: 0, dropped: 0, skipped: 0 };

  constructor(
    readonly name: string,
    readonly slots: number,
  ) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`${name}: slots must be a positive integer, got ${slots}`);
  }

  /** Work running now. */
  get active(): number {
    return this.#active;
  }

  /** Work waiting for a slot, by class at this moment. */
  waiting(level?: WorkClass): number {
    return level === undefined ? this.#waiting.length : this.#waiting.filter((w) => levelOf(w.priority) === level).length;
  }

  /**
   * Waits for a slot. Rejects with the signal's reason if it fires first (the work is dropped), and
   * with WorkSkippedError for a partial transcript that would have to wait.
   */
  acquire(priority: PriorityLike | undefined, signal: AbortSignal | undefined): Promise<Slot> {
    if (signal?.aborted) {
      this.stats.dropped++;
      return Promise.reject(signal.reason);
    }
    // Partial transcripts only use an idle engine: they are a courtesy, turns are the work.
    if (levelOf(priority) === 'partial' && (this.#active > 0 || this.#waiting.length > 0)) {
      this.stats.skipped++;
      return Promise.reject(new WorkSkippedError(this.name));
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = { priority, seq: this.#seq++, queuedAt: performance.now(), grant: resolve };
      const onAbort = () => {
        const index = this.#waiting.indexOf(waiter);
        if (index < 0) return;
        this.#waiting.splice(index, 1);
        this.stats.dropped++;
        reject(signal!.reason);
      };
      waiter.grant = (slot) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(slot);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
      this.#pump();
    });
  }

  /** Runs `work` in a slot; the slot is freed when it settles. */
  async run<T>(work: () => Promise<T>, options: { priority?: PriorityLike; signal?: AbortSignal } = {}): Promise<{ value: T; waitMs: number }> {
    const slot = await this.acquire(options.priority, options.signal);
    try {
      return { value: await work(), waitMs: slot.waitMs };
    } finally {
      slot.release();
    }
  }

  #pump(): void {
    while (this.#active < this.slots && this.#waiting.length > 0) {
      let best = 0;
      for (let i = 1; i < this.#waiting.length; i++) {
        const a = this.#waiting[i]!;
        const b = this.#waiting[best]!;
        const byRank = RANK[levelOf(a.priority)] - RANK[levelOf(b.priority)];
        if (byRank < 0 || (byRank === 0 && a.seq < b.seq)) best = i;
      }
      const [waiter] = this.#waiting.splice(best, 1);
      this.#active++;
      this.stats.started++;
      let released = false;
      waiter!.grant({
        waitMs: performance.now() - waiter!.queuedAt,
        release: () => {
          if (released) return;
          released = true;
          this.#active--;
          this.#pump();
        },
      });
    }
  }
}

export interface SchedulerOptions {
  /** Whisper decodes at once (sherpa-onnx decodes one stream per call: no batch decode for Whisper). */
  asrSlots: number;
  /** LLM answers generating at once (node-llama-cpp batches the sequences of one context). */
  llmSlots: number;
  /** TTS syntheses at once (the TTS server's streams). */
  ttsSlots: number;
  /** The back-off rule (mayPreempt); off only to measure what it does (the capacity benchmark). */
  preemptionBackoff: boolean;
}

/** The load the worker carries right now, for pings and logs. */
export interface LoadSnapshot {
  asr: { active: number; waiting: number };
  llm: { active: number; waiting: number };
  tts: { active: number; waiting: number };
}

export class Scheduler {
  readonly asr: EngineLane;
  readonly llm: EngineLane;
  readonly tts: EngineLane;
  readonly preemptionBackoff: boolean;
  /** Preemptive answers the back-off rule did not start. */
  preemptionsDeclined = 0;

  constructor(options: SchedulerOptions) {
    this.asr = new EngineLane('asr', options.asrSlots);
    this.llm = new EngineLane('llm', options.llmSlots);
    this.tts = new EngineLane('tts', options.ttsSlots);
    this.preemptionBackoff = options.preemptionBackoff;
  }

  /**
   * The back-off rule: may a preemptive (speculative) answer start now? Only on idle capacity: no
   * confirmed work waits on any engine, and the LLM and the TTS each have a slot free right now.
   */
  mayPreempt(): boolean {
    if (!this.preemptionBackoff) return true;
    const confirmedWaiting = this.asr.waiting('confirmed') + this.llm.waiting('confirmed') + this.tts.waiting('confirmed');
    const free = (lane: EngineLane) => lane.active + lane.waiting() < lane.slots;
    const ok = confirmedWaiting === 0 && free(this.llm) && free(this.tts);
    if (!ok) this.preemptionsDeclined++;
    return ok;
  }

  load(): LoadSnapshot {
    const lane = (l: EngineLane) => ({ active: l.active, waiting: l.waiting() });
    return { asr: lane(this.asr), llm: lane(this.llm), tts: lane(this.tts) };
  }
}
