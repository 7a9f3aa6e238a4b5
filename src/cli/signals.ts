/**
 * How a command stops early and keeps its work: the one place the CLI listens
 * for Ctrl-C (SIGINT), SIGTERM and a closed stdout (EPIPE, `… | head -2`).
 *
 * The first of them aborts the returned signal: the running command stops
 * at its next check, prints (or records) what it finished and exits on its
 * own — never `process.exit` while onnxruntime or worker threads are live,
 * which is what aborted in native code (`terminate called after throwing an
 * instance of 'Napi::Error'`). The signal handlers are then removed, so a
 * second Ctrl-C gets the default action and ends the process at once, even
 * inside a long synchronous step where no JavaScript could run.
 */

export type StopReason = 'SIGINT' | 'SIGTERM' | 'EPIPE';

export interface SignalStop {
  readonly signal: AbortSignal;
  /** Why it stopped, once it has. */
  reason(): StopReason | undefined;
  dispose(): void;
}

/**
 * Exit status of a command stopped by `reason`: 130 for a signal (128 + SIGINT),
 * 1 for a closed stdout with work left.
 */
export function stopExitCode(reason: StopReason): number {
  return reason === 'EPIPE' ? 1 : 130;
}

export function abortOnSignals(onFirst?: (reason: StopReason) => void): SignalStop {
  const controller = new AbortController();
  let why: StopReason | undefined;
  const stop = (reason: StopReason) => {
    if (why) return;
    why = reason;
    removeSignals();
    onFirst?.(reason);
    controller.abort(new DOMException(reason === 'EPIPE' ? 'stdout was closed' : `stopped by ${reason}`, 'AbortError'));
  };
  const onSignal = (sig: NodeJS.Signals) => stop(sig === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
  const onPipe = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') stop('EPIPE');
  };
  const removeSignals = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onPipe);
  return {
    signal: controller.signal,
    reason: () => why,
    dispose: () => {
      removeSignals();
      process.stdout.off('error', onPipe);
    },
  };
}

/** Whether `e` is the stop of `stop` (rather than a failure that happened to come after it). */
export function isStop(e: unknown, stop: SignalStop): boolean {
  return stop.signal.aborted && (e === stop.signal.reason || (e as Error)?.name === 'AbortError');
}
