/** Option value parsers: a bad value is a commander error naming the flag. */
import { InvalidArgumentError } from 'commander';

export function int(value: string): number {
  const v = Number(value);
  if (!Number.isInteger(v)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return v;
}

export function positiveInt(value: string): number {
  const v = int(value);
  if (v < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return v;
}

export function nonNegativeInt(value: string): number {
  const v = int(value);
  if (v < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return v;
}

export function finite(value: string): number {
  const v = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(v)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return v;
}

export function positive(value: string): number {
  const v = finite(value);
  if (!(v > 0)) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return v;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** "b1,b2" with both in [0, 1): Adam's betas. */
export function betaPair(value: string): [number, number] {
  const parts = value.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 2 || !parts.every((b) => Number.isFinite(b) && b >= 0 && b < 1)) {
    throw new InvalidArgumentError(`expected two numbers in [0, 1) separated by a comma, e.g. 0.9,0.999; got "${value}"`);
  }
  return [parts[0]!, parts[1]!];
}
