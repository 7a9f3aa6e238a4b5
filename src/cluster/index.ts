/**
 * The cluster transport for studies (the study layer owns the `Transport`
 * interface and the local pool, src/study/local.ts): a NATS JetStream work
 * queue with its `odeness worker` side.
 */
export { NatsTransport, type NatsStudyOptions } from './nats-coordinator.js';
export { runWorker, type WorkerOptions, type WorkerSummary } from './nats-worker.js';
export { connectNats, maskUrl, describeNats, type NatsConnectOptions } from './nats-connect.js';
export {
  PROTOCOL_VERSION,
  type JobMessage,
  type ResultMessage,
  type EventMessage,
  type BundleArchive,
} from './protocol.js';
