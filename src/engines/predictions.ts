/**
 * Class predictions from logits held in typed arrays (row-major [n, classes]): the ONNX evaluation and the ort
 * engine's accuracy checks count them the same way here.
 */

/** How many of the rows predict their label: the first largest logit of a row is its class (ties: the lower). */
export function countCorrect(logits: Float32Array, labels: Int32Array, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = i * classes;
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[row + c]! > logits[row + best]!) best = c;
    if (best === labels[i]) correct++;
  }
  return correct;
}
