/**
 * What a piece of engine work is for, most urgent first: a confirmed turn's, speculative work
 * (speculative ASR, preemptive answers), partial transcripts. The engines' interfaces carry it so
 * the scheduler (src/pipeline/scheduler.ts) can order the work of many conversations.
 */
export type WorkClass = 'confirmed' | 'speculative' | 'partial';

/**
 * A work class that can change while the work waits: a speculative transcript or answer whose turn
 * is confirmed is promoted, and moves ahead of the speculative work queued with it.
 */
export class WorkPriority {
  constructor(public level: WorkClass) {}

  promote(): void {
    this.level = 'confirmed';
  }
}

export type PriorityLike = WorkClass | WorkPriority;

/** Absent means confirmed: work nobody marked is a user waiting for an answer. */
export const levelOf = (priority: PriorityLike | undefined): WorkClass => (priority === undefined ? 'confirmed' : typeof priority === 'string' ? priority : priority.level);
