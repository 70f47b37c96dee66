import { rethrown } from '../errors';
import type { ResolvedInput } from './input';

/**
 * Rewrites a core error about `system k` / `systems[k]` of a batch into the
 * frame's index in the file (and the line of its atom-count header).
 */
export function frameError(e: unknown, input: ResolvedInput, firstFrame: number, lines: number[]): Error {
  const message = e instanceof Error ? e.message : String(e);
  const m = /systems\[(\d+)\]: |\bof system (\d+)\b/.exec(message);
  if (!m) return rethrown(e, `${input.name}, frames ${firstFrame}–${firstFrame + lines.length - 1}: ${message}`);
  const k = Number(m[1] ?? m[2]);
  const cleaned = m[1] !== undefined ? message.replace(m[0], '') : message.replace(m[0], '');
  return rethrown(e, `${input.name}, frame ${firstFrame + k} (line ${lines[k]}): ${cleaned}`);
}

