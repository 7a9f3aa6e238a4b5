// Test-only faults for NATS job processes, kept out of the production entry (workers/job-process.ts).
// Loaded with NODE_OPTIONS=--import (see jobHooksEnv in test/helpers/cluster.ts): the `odeness worker`
// passes its environment to its job processes, so this module runs in each of them; in a process without
// an IPC channel (the worker itself) it does nothing. It wraps the job process's 'message' listener:
//   ODENESS_TEST_ABORT_JOB=<id>        aborts the process when that job starts (a V8-level abort, like a
//                                      "Fatal JavaScript invalid size error");
//   ODENESS_TEST_STALL_JOB=<id>:<ms>   sleeps that long, reporting no progress, before running it.
const abortId = process.env.ODENESS_TEST_ABORT_JOB;
const [stallId, stallMs] = (process.env.ODENESS_TEST_STALL_JOB ?? '').split(':');

if (process.send && (abortId || stallId)) {
  const on = process.on.bind(process);
  process.on = (event, listener) => {
    if (event !== 'message') return on(event, listener);
    return on(event, (m, ...rest) => {
      const id = m?.kind === 'run' ? m.job?.id : undefined;
      if (id !== undefined && id === abortId) {
        process.send({ kind: 'start' });
        process.abort();
      }
      if (id !== undefined && id === stallId) {
        process.send({ kind: 'start' });
        setTimeout(() => listener(m, ...rest), Number(stallMs));
        return;
      }
      listener(m, ...rest);
    });
  };
}
