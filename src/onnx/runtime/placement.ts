/**
 * Which execution provider runs each node of a session. onnxruntime places a node on the first provider
 * that has a kernel for it and leaves the rest to the CPU provider, copying tensors between them; it
 * says where in its profile. `placedSession` creates a session with profiling on, runs it once on zeros,
 * ends profiling and counts the nodes per provider (and the host↔device copies it inserted).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createSession, type SessionOptions } from './session.js';

export interface Placement {
  /** Nodes run per provider, e.g. { WebGpuExecutionProvider: 230, CPUExecutionProvider: 4 }. */
  readonly nodes: Record<string, number>;
  /** Memcpy nodes onnxruntime inserted between the device and the host. */
  readonly copies: number;
  /** Op types left to the CPU provider beside another provider (what that provider lacks), with counts. */
  readonly cpuOps?: Record<string, number>;
}

interface ProfileEvent {
  readonly cat?: string;
  readonly name?: string;
  readonly args?: { provider?: string; op_name?: string };
}

/** Count the nodes of a profile per provider (each node once, however often it ran). */
export function placementOf(events: readonly ProfileEvent[]): Placement {
  const seen = new Map<string, { provider: string; op: string }>();
  let copies = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.provider || seen.has(e.name)) continue;
    seen.set(e.name, { provider: e.args.provider, op: e.args.op_name ?? '?' });
    if (e.args.op_name?.startsWith('Memcpy')) copies++;
  }
  const nodes: Record<string, number> = {};
  const cpuOps: Record<string, number> = {};
  for (const { provider, op } of seen.values()) {
    nodes[provider] = (nodes[provider] ?? 0) + 1;
    if (provider === CPU_PROVIDER) cpuOps[op] = (cpuOps[op] ?? 0) + 1;
  }
  const mixed = Object.keys(nodes).some((p) => p !== CPU_PROVIDER);
  return { nodes, copies, ...(mixed && Object.keys(cpuOps).length > 0 ? { cpuOps } : {}) };
}

const CPU_PROVIDER = 'CPUExecutionProvider';

const ZEROS = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array } as const;

/** Zero feeds for every input; symbolic dims take `batch`. */
function zeroFeeds(session: ort.InferenceSession, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const m of session.inputMetadata) {
    if (!m.isTensor || !(m.type in ZEROS)) {
      throw new Error(`placement run: input ${m.name} is ${m.isTensor ? m.type : 'not a tensor'}`);
    }
    const dims = m.shape.map((d) => (typeof d === 'number' ? d : batch));
    const size = dims.reduce((a, b) => a * b, 1);
    feeds[m.name] = new ort.Tensor(m.type as keyof typeof ZEROS, new ZEROS[m.type as keyof typeof ZEROS](size), dims);
  }
  return feeds;
}

/** A session with its node placement, from one profiled run on zeros (symbolic dims = `batch`). */
export async function placedSession(
  bytes: Uint8Array,
  o: SessionOptions,
  batch: number,
): Promise<{ session: ort.InferenceSession; placement: Placement }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'odeness-placement-'));
  try {
    const session = await createSession(bytes, { ...o, profilePrefix: path.join(dir, 'p') });
    try {
      await session.run(zeroFeeds(session, batch));
      session.endProfiling();
      const [file] = (await readdir(dir)).filter((f) => f.endsWith('.json'));
      const events = file ? (JSON.parse(await readFile(path.join(dir, file), 'utf8')) as ProfileEvent[]) : [];
      return { session, placement: placementOf(events) };
    } catch (e) {
      await session.release();
      throw e;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Sum placements (the several graphs of adaptive training). */
export function addPlacements(list: readonly Placement[]): Placement {
  const nodes: Record<string, number> = {};
  const cpuOps: Record<string, number> = {};
  for (const p of list) {
    for (const [k, n] of Object.entries(p.nodes)) nodes[k] = (nodes[k] ?? 0) + n;
    for (const [k, n] of Object.entries(p.cpuOps ?? {})) cpuOps[k] = (cpuOps[k] ?? 0) + n;
  }
  const copies = list.reduce((s, p) => s + p.copies, 0);
  return { nodes, copies, ...(Object.keys(cpuOps).length > 0 ? { cpuOps } : {}) };
}
