/**
 * A port the worker needs that it cannot open (another process holds it) stops start-up with one
 * line naming the port and what moves it: an environment variable or a command-line flag.
 */
import { ConfigError } from '../src/errors.js';

/** `error` as a ConfigError naming `port` and `mover` when it is a taken (or forbidden) port; else `error` unchanged. */
export function portError(error: unknown, port: number, mover: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return error;
  const problem = code === 'EADDRINUSE' ? 'is already in use (another process listens on it)' : 'may not be opened by this user';
  const fix = mover.startsWith('--') ? `pass ${mover} with a free port` : `set ${mover} to a free port`;
  return new ConfigError(`port ${port} (${mover}) ${problem}: stop that process or ${fix}`, { cause: error });
}

/** Runs `open`, turning a taken port into the ConfigError above. */
export async function openPort<T>(open: () => Promise<T>, port: number, mover: string): Promise<T> {
  try {
    return await open();
  } catch (error) {
    throw portError(error, port, mover);
  }
}
