#!/usr/bin/env node
// Runs the compiled CLI (npm run build writes dist/). Telemetry is switched off before anything loads onnxruntime.
await import('../dist/src/no-telemetry.js');
const { main } = await import('../dist/src/cli/main.js');
await main(process.argv);
