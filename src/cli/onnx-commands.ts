/** Commands over ONNX bundles (filled in with src/onnx). */
import { SpecError } from '../errors.js';

export async function evaluateBundleCommand(_opts: Record<string, unknown>): Promise<void> {
  throw new SpecError('--bundle evaluation is not available yet');
}
