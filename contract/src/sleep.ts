// One sleep for the whole code base: a timer that an AbortSignal cuts short.

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Sleep that rejects with the signal's reason when aborted. */
export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'));
      return;
    }
    const t = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Waits `ms`, or less when `signal` aborts; never rejects. For loops that check the signal
 * themselves after each wait (watches, leader election, the outbox relay).
 */
export const pause = (ms: number, signal?: AbortSignal): Promise<void> =>
  sleep(ms, signal).catch(() => undefined);
