/**
 * Whether this machine's onnxruntime has its blocked-channel (NCHWc) kernels, and their block size.
 * onnxruntime registers them only where MLAS has them (x86-64 with AVX2: 8 channels, AVX-512: 16), so the
 * engines ask once per process and write the blocked conv fields only then (GraphWriter.nchwcBlock).
 * ODENESS_NCHWC=0 turns them off (plain Conv everywhere), for comparisons and as an escape hatch.
 * They are CPU kernels: graphs for another device use the portable layout (block 0).
 */
import * as ort from 'onnxruntime-node';
import { NCHWC_REORDER_INPUT } from './ir/nchwc-ops.js';
import { GraphBuilder } from './graph.js';
import type { Device } from './runtime/device.js';
import { createSession } from './runtime/session.js';

let probe: Promise<number> | undefined;

/** The NCHWc channel block for graphs on `device`: 0 off the CPU, when onnxruntime has none, or ODENESS_NCHWC=0. */
export function nchwcBlockSize(device: Device = 'cpu'): Promise<number> {
  if (process.env.ODENESS_NCHWC === '0' || device !== 'cpu') return Promise.resolve(0);
  probe ??= measureBlock().catch(() => 0);
  return probe;
}

/**
 * Reorders a [1, 32, 1, 2] tensor holding x[c, w] = 2c + w: blocked, element (c = 0, w = 1) lands at index
 * `block`, the first place a 1 appears (32 channels are whole blocks of 8 and of 16).
 */
async function measureBlock(): Promise<number> {
  const b = new GraphBuilder({ name: 'nchwc_probe' });
  b.input('x', 'float32', [1, 32, 1, 2]);
  b.op(NCHWC_REORDER_INPUT, ['x'], {}, 'y');
  b.output('y', 'float32', [1, 32, 1, 2]);
  const session = await createSession(b.toBytes());
  try {
    const x = Float32Array.from({ length: 64 }, (_, i) => i);
    const y = (await session.run({ x: new ort.Tensor('float32', x, [1, 32, 1, 2]) })).y!.data as Float32Array;
    const block = y.indexOf(1);
    return block === 8 || block === 16 ? block : 0;
  } finally {
    await session.release();
  }
}
