/**
 * The conversations one worker carries at once (S2S_MAX_CONVERSATIONS): turn jobs and session jobs
 * (the queue worker takes jobs only below the limit) and a load-balancing endpoint's live sessions
 * (the next client is refused with HTTP 429 before its upgrade, and /ping says the worker is full).
 */
export interface ConversationLoad {
  inProgress: number;
  max: number;
}

export class ConversationSlots {
  #inProgress = 0;

  constructor(readonly max: number) {}

  get inProgress(): number {
    return this.#inProgress;
  }

  get full(): boolean {
    return this.#inProgress >= this.max;
  }

  load(): ConversationLoad {
    return { inProgress: this.#inProgress, max: this.max };
  }

  /** A slot, or null when the worker is full. The returned function frees it (once). */
  tryTake(): (() => void) | null {
    if (this.full) return null;
    this.#inProgress++;
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      this.#inProgress--;
    };
  }
}

/** The JSON a full worker answers with (HTTP 429 on /ws and /v1/realtime, and on /ping). */
export function fullAnswer(load: ConversationLoad): { error: 'worker_full'; message: string; conversations: number; max: number } {
  return {
    error: 'worker_full',
    message: `this worker carries ${load.inProgress} of ${load.max} conversations (S2S_MAX_CONVERSATIONS); try again shortly or another worker`,
    conversations: load.inProgress,
    max: load.max,
  };
}
