import type { Logger } from 'pino';

/**
 * Runs `task` every `intervalMs` (the first run after one interval), never two runs at once: a run
 * that takes longer than the interval makes the next tick a no-op. A failing run is logged and the
 * schedule goes on. Returns the stop function; the timer does not keep the process alive.
 */
export function startPeriodic(name: string, intervalMs: number, log: Logger, task: () => Promise<void>): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } catch (err) {
      log.error({ err }, `${name} failed`);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
