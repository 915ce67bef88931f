// Driving code that runs on a ManualClock while its I/O is real: let I/O run without moving time (until), look
// at a promise without waiting (state), and move time in small steps until a promise settles (settle).
import type { ManualClock } from '../../src/util/clock.js';

/** Let real I/O run (event-loop turns, no timers) until `cond` holds. */
export async function until(cond: () => boolean, maxTurns = 200_000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > maxTurns) throw new Error('condition never held');
    await new Promise((r) => setImmediate(r));
  }
}

/** 'resolved', 'rejected' or 'pending' once the jobs queued now have run. */
export function state(p: Promise<unknown>): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([
    p.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    new Promise<'pending'>((r) => setImmediate(() => r('pending'))),
  ]);
}

/** Advance the clock in `step` ms steps until `p` settles (or `maxMs` of clock time passed); returns the time used. */
export async function settle(clock: ManualClock, p: Promise<unknown>, maxMs = 10_000, step = 50): Promise<number> {
  const t0 = clock.now();
  while ((await state(p)) === 'pending' && clock.now() - t0 < maxMs) await clock.advance(step);
  return clock.now() - t0;
}
