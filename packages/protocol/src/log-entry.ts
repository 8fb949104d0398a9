import { z } from 'zod';

/**
 * One execution log entry. `out` is the combined output, every line prefixed
 * `stdout: ` or `stderr: `. `exitCode` and `durationMs` stay absent while the step runs.
 */
export const ExecutionLogEntry = z.object({
  key: z.string().max(1000),
  command: z.array(z.string()).max(100_000).nullish(),
  startTime: z.string().max(100),
  exitCode: z.number().int().nullish(),
  out: z.string().optional(),
  durationMs: z.number().int().nullish(),
});
export type ExecutionLogEntry = z.infer<typeof ExecutionLogEntry>;
