export type { Dataset, Split } from './types.js';
export { rowWidth } from './types.js';
export { Rng, createRng, type Seed, type MutableArrayLike } from '../random.js';
export {
  SPHERE_PRESETS,
  SPHERE_PRESET_NAMES,
  DEFAULT_SPHERES_TRAIN,
  DEFAULT_SPHERES_TEST,
  makeSpheres,
  sampleSpheres,
  shellCounts,
  validateShells,
  type Shell,
  type SpherePreset,
  type SpheresOptions,
} from './spheres.js';
export {
  MNIST_SIZES,
  DEFAULT_MNIST_TRAIN,
  DEFAULT_MNIST_TEST,
  loadMnist,
  loadMnistPool,
  avgPool2d,
  type MnistOptions,
  type MnistPool,
} from './mnist.js';
export {
  CIFAR10_RECORD_BYTES,
  CIFAR10_CLASSES,
  CIFAR10_DATA_FILES,
  CIFAR10_TEST_FILE,
  loadCifar10,
  type Cifar10Options,
} from './cifar10.js';
export { readJsonData, jsonToData, loadJsonDataset, type JsonData, type JsonDatasetOptions } from './json.js';
export { DATA_LIMITS, FLOAT32_MAX, checkDataSize, checkLabelsFitModel, checkTrainingLabels } from './limits.js';
export {
  DATASET_NAMES,
  parseDatasetSpec,
  formatDatasetSpec,
  loadDataset,
  type DatasetSpec,
} from './spec.js';
export type { SpheresDatasetSpec, MnistDatasetSpec, Cifar10DatasetSpec, JsonDatasetSpec } from './format.js';
export { batchIterator, gather, type BatchOptions } from './batch.js';
