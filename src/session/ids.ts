import { randomUUID } from 'node:crypto';

/** An id in OpenAI's style (`item_...`, `resp_...`): a prefix and 20 random hex digits, unique in a session; protocols show them as they are. */
export const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
