/** `cli logits` on the torchvision reference fixture: files in, JSON out, values within the parity tolerances. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli';
import { referenceInput, referenceStateDict } from '../../src/model/reference-init';
import { serializeSafetensors } from '../../src/model/safetensors';
import { loadReference, relError, relScalar } from '../helpers/reference';

jest.setTimeout(60_000);

describe('cli logits', () => {
  const ref = loadReference();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gpulab-cli-'));
    const dict = referenceStateDict(ref.seed, ref.num_classes);
    writeFileSync(
      path.join(dir, 'w.safetensors'),
      serializeSafetensors(
        [...dict].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })),
      ),
    );
    writeFileSync(
      path.join(dir, 'x.safetensors'),
      serializeSafetensors([
        {
          name: 'input',
          dtype: 'F32',
          shape: [4, 3, 64, 64],
          data: referenceInput('input64', [4, 3, 64, 64], ref.seed),
        },
      ]),
    );
    writeFileSync(path.join(dir, 'labels.json'), '[1, 3, 5, 7]');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints eval logits and one training step as JSON', async () => {
    const out: string[] = [];
    const code = await runCli(
      [
        'logits',
        '--weights',
        path.join(dir, 'w.safetensors'),
        '--input',
        path.join(dir, 'x.safetensors'),
        '--train-step',
        path.join(dir, 'labels.json'),
        '--backend',
        'wasm',
      ],
      (s) => out.push(s),
    );
    expect(code).toBe(0);
    const r = JSON.parse(out[0]!) as {
      backend: string;
      logits: number[][];
      trainStep: {
        loss: number;
        gradNorms: Record<string, number>;
        bn1RunningVar: number[];
        logitsAfterStep: number[][];
      };
    };
    expect(r.backend).toBe('wasm');
    expect(r.logits).toHaveLength(4);
    expect(relError(r.logits.flat(), ref.eval_logits_64)).toBeLessThan(1e-4);
    expect(relScalar(r.trainStep.loss, ref.train_loss_step1)).toBeLessThan(1e-3);
    expect(relScalar(r.trainStep.gradNorms['fc.weight']!, ref.grad_norm_fc_weight)).toBeLessThan(1e-3);
    expect(relScalar(r.trainStep.gradNorms['conv1.weight']!, ref.grad_norm_conv1_weight)).toBeLessThan(1e-3);
    expect(relError(r.trainStep.bn1RunningVar.slice(0, 8), ref.bn1_running_var_after_step)).toBeLessThan(1e-3);
    expect(relError(r.trainStep.logitsAfterStep.flat(), ref.eval_logits_64_after_step)).toBeLessThan(1e-3);
  });

  it('reports usage errors with exit code 2', async () => {
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runCli(['logits', '--weights', 'w'], () => {})).toBe(2);
      expect(await runCli(['nope'], () => {})).toBe(2);
      expect(await runCli(['predict', '--model', dir], () => {})).toBe(2);
    } finally {
      err.mockRestore();
    }
  });
});
