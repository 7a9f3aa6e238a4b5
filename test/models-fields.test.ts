/**
 * The field registry: every kind parses its options with bounds (one-line
 * SpecErrors instead of failed allocations) and every kind round-trips
 * through parse → format → parse.
 */
import test from 'ava';
import { SpecError } from '../src/errors.js';
import { FIELD_KINDS, fieldKind } from '../src/models/fields/index.js';
import { paramShapes } from '../src/models/params.js';
import { formatFieldSpec, parseFieldSpec } from '../src/models/spec.js';

test('every registered kind parses its defaults and formats canonically', (t) => {
  t.deepEqual([...FIELD_KINDS], ['mlp', 'conv1d', 'conv2d', 'onnx']);
  for (const kind of FIELD_KINDS) {
    // The onnx kind has no default: its one required option is the file.
    const spec = parseFieldSpec(kind === 'onnx' ? 'onnx:test/fixtures/onnx/mlp-time.onnx' : kind);
    t.is(spec.kind, kind);
    // A field file's canonical form names it by name and hash; located, it reads back from where it lies.
    t.deepEqual(parseFieldSpec(formatFieldSpec(spec, { located: true })), spec);
    t.is(fieldKind(spec).kind, kind);
  }
});

test('out-of-range sizes are one-line SpecErrors naming the option and its bounds', (t) => {
  const cases: [string, RegExp][] = [
    ['mlp:width=1000000', /field spec "mlp:width=1000000": width must be between 1 and 16384, got 1000000/],
    ['mlp:depth=1000', /depth must be between 1 and 64, got 1000/],
    ['conv1d:channels=100000', /channels must be between 1 and 4096, got 100000/],
    ['conv2d:channels=0', /channels must be a positive integer, got "0"/],
    ['mlp:width=2.5', /width must be a positive integer, got "2.5"/],
  ];
  for (const [spec, message] of cases) {
    const e = t.throws(() => parseFieldSpec(spec), { instanceOf: SpecError, message });
    t.false(e!.message.includes('\n'), spec);
  }
});

test('a model too large to allocate is refused before allocation', (t) => {
  const config = {
    inputShape: [900],
    augment: 0,
    stateShape: [900],
    classes: 10,
    field: parseFieldSpec('mlp:width=16384,depth=8'),
    t0: 0,
    t1: 1,
  };
  t.throws(() => paramShapes(config), {
    instanceOf: SpecError,
    message: /mlp:width=16384,depth=8,act=tanh.*1[0-9]{9} parameters; at most 536870912/,
  });
});

test('a kind on the wrong state rank is a ShapeError naming the kind', (t) => {
  const config = {
    inputShape: [4],
    augment: 0,
    stateShape: [4],
    classes: 2,
    field: parseFieldSpec('conv2d'),
    t0: 0,
    t1: 1,
  };
  t.throws(() => paramShapes(config), {
    message: /a conv2d field needs an image state \[C, H, W\], got state shape \[4\]/,
  });
});
