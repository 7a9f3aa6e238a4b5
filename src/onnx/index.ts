/** The ONNX layer: graph writing, model graphs, bundles, onnxruntime sessions, re-evaluation. */
export * from './graph.js';
export * from './model-graphs.js';
export * from './bundle.js';
export * from './session.js';
export * from './evaluate.js';
