import { BACKENDS, FLAVOR_PATTERN, type JobSpec, JobSpecSchema, S3_URI_PATTERN } from './job-spec';

/**
 * Job spec parsing without zod's cost on the hot path (every job submission parses one: zod took ~11% of the API
 * server's busy time in bench/api, ~11 µs per spec; this check takes 0.5–1.3 µs). `fastJobSpec` is a hand-written
 * check of `JobSpecSchema` that only ever says yes: for a spec it accepts it returns exactly what `JobSpecSchema.parse`
 * returns (same values, defaults filled in, same key order); for anything it is not sure of — an invalid spec, a value
 * `undefined`, a non-plain object, a number that is not finite, a NUL character in the name — it returns null and the
 * caller parses with the schema, which accepts or reports the error exactly as before. So the schema stays the one
 * definition of what is valid and of every error message. Refusing a valid spec only costs speed; accepting an invalid
 * one, or answering differently, would be a bug: packages/core/test/job-spec-parse.test.ts compares the two on random,
 * mutated and boundary inputs (every integer near every bound). A change to `JobSpecSchema` needs the same change
 * here: that test fails until it has one (a narrower bound, a new field with a default), or the new values take the
 * slow path (a wider bound, a new optional field).
 */
export function parseJobSpec(input: unknown): JobSpec {
  return fastJobSpec(input) ?? JobSpecSchema.parse(input);
}

/** Thrown (not an Error: nothing to capture) when the fast path gives up; caught in `fastJobSpec`. */
const GIVE_UP = Object.freeze({ fastJobSpec: 'gave up' });

function giveUp(): never {
  throw GIVE_UP;
}

type Obj = Record<string, unknown>;

const SPEC_KEYS = new Set([
  'name',
  'dataset',
  'model',
  'imageSize',
  'epochs',
  'batchSize',
  'optimizer',
  'schedule',
  'freeze',
  'augmentation',
  'gradClipNorm',
  'labelSmoothing',
  'earlyStopping',
  'seed',
  'backend',
  'resources',
]);
const DATASET_KEYS = new Set(['uri']);
const MODEL_KEYS = new Set(['arch', 'pretrained']);
const BACKEND_SET = new Set<string>(BACKENDS);
const NO_KEYS: ReadonlySet<string> = new Set();

/**
 * The spec in `input` as `JobSpecSchema.parse(input)` returns it, or null when this fast check is not sure (the schema
 * decides then). `ignore`: top-level keys that are not part of the spec (a submission's `group` and `priority`).
 */
export function fastJobSpec(input: unknown, ignore: ReadonlySet<string> = NO_KEYS): JobSpec | null {
  try {
    return spec(input, ignore);
  } catch (e) {
    if (e === GIVE_UP) return null;
    throw e;
  }
}

function spec(input: unknown, ignore: ReadonlySet<string>): JobSpec {
  const o = plain(input);
  for (const k in o) if (!SPEC_KEYS.has(k) && !ignore.has(k)) giveUp(); // strict: an unknown key is an error
  const name = field(o, 'name');
  const out: Partial<JobSpec> = {};
  if (name !== undefined) out.name = trimmedName(name);
  out.dataset = dataset(field(o, 'dataset'));
  out.model = model(field(o, 'model'));
  out.imageSize = int(field(o, 'imageSize'), 16, 512, 224);
  out.epochs = int(field(o, 'epochs'), 1, 500, 25);
  out.batchSize = int(field(o, 'batchSize'), 1, 512, 32);
  out.optimizer = optimizer(field(o, 'optimizer'));
  out.schedule = schedule(field(o, 'schedule'));
  out.freeze = freeze(field(o, 'freeze'));
  out.augmentation = augmentation(field(o, 'augmentation'));
  const clip = field(o, 'gradClipNorm');
  out.gradClipNorm = clip === undefined || clip === null ? null : num(clip, 0, Number.POSITIVE_INFINITY, true);
  out.labelSmoothing = numOr(field(o, 'labelSmoothing'), 0, 0.5, false, 0);
  out.earlyStopping = earlyStopping(field(o, 'earlyStopping'));
  out.seed = int(field(o, 'seed'), 0, 2 ** 31 - 1, 42);
  out.backend = backend(field(o, 'backend'));
  out.resources = resources(field(o, 'resources'));
  return out as JobSpec;
}

/**
 * A plain object (what JSON.parse makes: its prototype is an Object.prototype, of any realm, or null); anything else
 * (arrays, dates, class instances) goes to the schema.
 */
function plain(v: unknown): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) giveUp();
  const proto = Object.getPrototypeOf(v);
  if (proto !== null && Object.getPrototypeOf(proto) !== null) giveUp();
  if (typeof (v as Obj).then === 'function') giveUp(); // zod takes a thenable for a promise
  return v as Obj;
}

/** `o[k]`; a key present with the value `undefined` (JSON has none) goes to the schema. */
function field(o: Obj, k: string): unknown {
  const v = o[k];
  if (v === undefined && k in o) giveUp();
  return v;
}

/** A strict object's keys: only those in `keys`. */
function strictKeys(o: Obj, keys: ReadonlySet<string>): Obj {
  for (const k in o) if (!keys.has(k)) giveUp();
  return o;
}

function trimmedName(v: unknown): string {
  if (typeof v !== 'string') giveUp();
  const t = v.trim();
  if (t.length < 1 || t.length > 120 || t.includes('\u0000')) giveUp(); // a NUL: the caller's error to report
  return t;
}

function s3Uri(v: unknown): string {
  if (typeof v !== 'string' || !S3_URI_PATTERN.test(v) || v.split('/').includes('..')) giveUp();
  return v;
}

/** An integer in [min, max]; `def` when absent. */
function int(v: unknown, min: number, max: number, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) giveUp();
  return v;
}

/** A finite number in [min, max] (`(min, max]` when `minExclusive`). */
function num(v: unknown, min: number, max: number, minExclusive: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v > max || (minExclusive ? v <= min : v < min)) giveUp();
  return v;
}

function numOr(v: unknown, min: number, max: number, minExclusive: boolean, def: number): number {
  return v === undefined ? def : num(v, min, max, minExclusive);
}

function bool(v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') giveUp();
  return v;
}

function dataset(v: unknown): JobSpec['dataset'] {
  const o = strictKeys(plain(v), DATASET_KEYS);
  return { uri: s3Uri(field(o, 'uri')) };
}

function model(v: unknown): JobSpec['model'] {
  if (v === undefined) return { arch: 'resnet18', pretrained: null };
  const o = strictKeys(plain(v), MODEL_KEYS);
  const arch = field(o, 'arch');
  if (arch !== undefined && arch !== 'resnet18') giveUp();
  const pretrained = field(o, 'pretrained');
  return { arch: 'resnet18', pretrained: pretrained === undefined || pretrained === null ? null : s3Uri(pretrained) };
}

// Objects below are not strict in the schema: unknown keys are dropped, as zod strips them.

function optimizer(v: unknown): JobSpec['optimizer'] {
  if (v === undefined) return { type: 'sgd', lr: 0.001, momentum: 0.9, weightDecay: 0, nesterov: false };
  const o = plain(v);
  const type = field(o, 'type');
  const lr = numOr(field(o, 'lr'), 0, 10, true, 0.001);
  if (type === 'sgd')
    return {
      type,
      lr,
      momentum: numOr(field(o, 'momentum'), 0, 0.999, false, 0.9),
      weightDecay: numOr(field(o, 'weightDecay'), 0, 1, false, 0),
      nesterov: bool(field(o, 'nesterov'), false),
    };
  if (type === 'adamw')
    return {
      type,
      lr,
      beta1: numOr(field(o, 'beta1'), 0, 0.9999, false, 0.9),
      beta2: numOr(field(o, 'beta2'), 0, 0.99999, false, 0.999),
      eps: numOr(field(o, 'eps'), 0, Number.POSITIVE_INFINITY, true, 1e-8),
      weightDecay: numOr(field(o, 'weightDecay'), 0, 1, false, 0.01),
    };
  return giveUp();
}

function schedule(v: unknown): JobSpec['schedule'] {
  if (v === undefined) return { type: 'step', stepSize: 7, gamma: 0.1 };
  const o = plain(v);
  const type = field(o, 'type');
  if (type === 'step')
    return {
      type,
      stepSize: int(field(o, 'stepSize'), 1, Number.POSITIVE_INFINITY, 7),
      gamma: numOr(field(o, 'gamma'), 0, 1, true, 0.1),
    };
  if (type === 'cosine')
    return {
      type,
      warmupEpochs: int(field(o, 'warmupEpochs'), 0, Number.POSITIVE_INFINITY, 0),
      minLr: numOr(field(o, 'minLr'), 0, Number.POSITIVE_INFINITY, false, 0),
    };
  if (type === 'constant') return { type };
  return giveUp();
}

function freeze(v: unknown): JobSpec['freeze'] {
  if (v === undefined) return { mode: 'head' };
  const o = plain(v);
  const mode = field(o, 'mode');
  if (mode === 'head' || mode === 'full') return { mode };
  if (mode === 'partial') return { mode, trainableStages: int(field(o, 'trainableStages'), 1, 4, 1) };
  return giveUp();
}

function augmentation(v: unknown): JobSpec['augmentation'] {
  if (v === undefined) return { randomResizedCrop: true, horizontalFlip: true, scale: [0.08, 1] };
  const o = plain(v);
  const randomResizedCrop = bool(field(o, 'randomResizedCrop'), true);
  const horizontalFlip = bool(field(o, 'horizontalFlip'), true);
  const s = field(o, 'scale');
  if (s === undefined) return { randomResizedCrop, horizontalFlip, scale: [0.08, 1] };
  if (!Array.isArray(s) || s.length !== 2) giveUp();
  return { randomResizedCrop, horizontalFlip, scale: [num(s[0], 0, 1, true), num(s[1], 0, 1, true)] };
}

function earlyStopping(v: unknown): JobSpec['earlyStopping'] {
  if (v === undefined || v === null) return null;
  const o = plain(v);
  const patience = field(o, 'patience');
  if (patience === undefined) giveUp();
  return {
    patience: int(patience, 1, 100, 0),
    minDelta: numOr(field(o, 'minDelta'), 0, Number.POSITIVE_INFINITY, false, 0),
  };
}

function backend(v: unknown): JobSpec['backend'] {
  if (v === undefined) return 'auto';
  if (typeof v !== 'string' || !BACKEND_SET.has(v)) giveUp();
  return v as JobSpec['backend'];
}

function resources(v: unknown): JobSpec['resources'] {
  if (v === undefined) return { gpus: 1, flavor: 'local' };
  const o = plain(v);
  const gpus = int(field(o, 'gpus'), 1, 8, 1);
  const f = field(o, 'flavor');
  if (f !== undefined && (typeof f !== 'string' || !FLAVOR_PATTERN.test(f))) giveUp();
  const flavor = (f as string | undefined) ?? 'local';
  const maxHours = field(o, 'maxHours');
  return maxHours === undefined ? { gpus, flavor } : { gpus, flavor, maxHours: num(maxHours, 0, 168, true) };
}
