import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURE_DIR, loadReference, SHARED_FIXTURE_DIR } from '../helpers/reference';

describe('the vendored torchvision fixture', () => {
  it('holds every reference value the parity tests use', () => {
    const ref = loadReference();
    expect(ref.seed).toBe(1);
    expect(ref.num_classes).toBe(10);
    expect(ref.eval_logits_224).toHaveLength(20);
    expect(ref.eval_logits_64).toHaveLength(40);
    expect(ref.eval_logits_64_after_step).toHaveLength(40);
    expect(ref.bn1_running_var_after_step).toHaveLength(8);
    for (const v of [ref.train_loss_step1, ref.grad_norm_fc_weight, ref.grad_norm_conv1_weight])
      expect(Number.isFinite(v)).toBe(true);
  });

  it('is the same as ../shared/fixtures/resnet18 wherever the shared folder is beside the repository', () => {
    // Project machines and CI lay out shared/ beside the clone; a clone elsewhere has only the vendored copy.
    const compared = ['README.md', 'reference-seed1.json'].filter((f) => existsSync(path.join(SHARED_FIXTURE_DIR, f)));
    for (const f of compared)
      expect(readFileSync(path.join(FIXTURE_DIR, f), 'utf8')).toBe(
        readFileSync(path.join(SHARED_FIXTURE_DIR, f), 'utf8'),
      );
  });
});
