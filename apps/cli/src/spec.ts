/**
 * The job spec options shared by `submit` and `quote`, and how they become a submission body: flags override a base
 * spec (a SPEC.json) which overrides the server's defaults (the seed recipe). Pure.
 */
import type { SubmitRequest } from '@gpulab/sdk';
import { type Args, num, type OptionSpec, str, usageError } from './command';

export const SPEC_OPTIONS: Record<string, OptionSpec> = {
  epochs: { type: 'string', arg: 'N', help: 'training epochs (default 25)' },
  gpu: { type: 'string', arg: 'FLAVOR', help: 'GPU type, e.g. a10g (default: local); see gpulab quota' },
  gpus: { type: 'string', arg: 'N', help: 'GPUs (default 1)' },
  'max-hours': {
    type: 'string',
    arg: 'H',
    help: "max runtime; max-hours × gpus is held from your quota (default: the group's)",
  },
  freeze: {
    type: 'string',
    arg: 'head|N|full',
    help: 'train only the head, the last N (1-4) ResNet stages + head, or everything (default head)',
    choices: ['head', '1', '2', '3', '4', 'full'],
  },
  'image-size': { type: 'string', arg: 'PX', help: 'input size in pixels, 16-512 (default 224)' },
  lr: { type: 'string', arg: 'RATE', help: 'learning rate (default 0.001)' },
  'batch-size': { type: 'string', arg: 'N', help: 'batch size (default 32)' },
  name: { type: 'string', arg: 'TEXT', help: 'a name for the job' },
  group: { type: 'string', arg: 'GROUP', help: 'group (course) to charge, by name or id (default: your first)' },
  backend: {
    type: 'string',
    arg: 'NAME',
    help: 'trainer backend: auto, tensorflow, webgpu, wasm, cpu (default auto)',
    choices: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'],
  },
};

/** `--freeze` as the spec's freeze object: head | 1-4 (partial) | full (also: none, all). */
export function parseFreeze(cmd: string, raw: string): NonNullable<SubmitRequest['freeze']> {
  const v = raw.trim().toLowerCase();
  if (v === 'head') return { mode: 'head' };
  if (v === 'full' || v === 'none' || v === 'all') return { mode: 'full' };
  if (/^[1-4]$/.test(v)) return { mode: 'partial', trainableStages: Number(v) };
  throw usageError(cmd, `--freeze must be head, a number of stages 1-4, or full; got ${JSON.stringify(raw)}`);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The submission body: `base` (e.g. read from SPEC.json) with the flags applied. */
export function buildSpec(cmd: string, args: Args, base: Obj = {}): SubmitRequest {
  const spec: Obj = { ...base };
  const set = (key: string, v: unknown) => {
    if (v !== undefined) spec[key] = v;
  };
  set('name', str(args, 'name'));
  set('group', str(args, 'group'));
  set('epochs', num(cmd, args, 'epochs', { integer: true, min: 1, max: 500 }));
  set('imageSize', num(cmd, args, 'image-size', { integer: true, min: 16, max: 512 }));
  set('batchSize', num(cmd, args, 'batch-size', { integer: true, min: 1, max: 512 }));
  const backend = str(args, 'backend');
  if (backend !== undefined) {
    if (!SPEC_OPTIONS.backend!.choices!.includes(backend))
      throw usageError(cmd, `--backend must be one of ${SPEC_OPTIONS.backend!.choices!.join(', ')}`);
    spec.backend = backend;
  }
  const freeze = str(args, 'freeze');
  if (freeze !== undefined) spec.freeze = parseFreeze(cmd, freeze);
  const lr = num(cmd, args, 'lr', { positive: true, max: 10 });
  if (lr !== undefined) spec.optimizer = { ...(isObj(spec.optimizer) ? spec.optimizer : { type: 'sgd' }), lr };

  const resources: Obj = isObj(spec.resources) ? { ...spec.resources } : {};
  const flavor = str(args, 'gpu');
  if (flavor !== undefined) {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(flavor))
      throw usageError(cmd, `--gpu must be a flavor name like a10g or local, got ${JSON.stringify(flavor)}`);
    resources.flavor = flavor;
  }
  const gpus = num(cmd, args, 'gpus', { integer: true, min: 1, max: 8 });
  if (gpus !== undefined) resources.gpus = gpus;
  const maxHours = num(cmd, args, 'max-hours', { positive: true, max: 168 });
  if (maxHours !== undefined) resources.maxHours = maxHours;
  if (Object.keys(resources).length) spec.resources = resources;
  return spec as SubmitRequest;
}

/** A SPEC.json's content: a JSON object, else a usage error naming the file. */
export function parseSpecFile(cmd: string, file: string, text: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw usageError(cmd, `${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(v)) throw usageError(cmd, `${file} must hold a JSON object (a job spec)`);
  return v;
}
