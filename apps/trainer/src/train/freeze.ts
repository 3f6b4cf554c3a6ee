/**
 * What trains under each freeze strategy (spec.freeze):
 * - head: only fc.weight / fc.bias. The whole backbone runs in eval mode: its batch norms normalise with their
 *   running statistics and never update them — a frozen torchvision backbone under `model.eval()` (as in
 *   `torch.no_grad()` feature extraction). We chose this over torchvision's tutorial recipe (requires_grad=False but
 *   model.train(), which keeps changing the frozen layers' BN statistics), because then "frozen" means the backbone's
 *   function is fixed and the head learns against stable features.
 * - partial(n): fc plus every parameter of the last n stages of layer1..layer4 (n=1: layer4). Those stages' batch
 *   norms run in train mode; the stem and earlier stages are frozen in eval mode as above.
 * - full: every parameter; every batch norm in train mode.
 * Backpropagation never enters frozen stages: TF.js only differentiates paths from trainable variables.
 */
import type { JobSpec } from '@gpulab/core';
import { BACKBONE_STAGES, type Stage } from '../model/architecture';
import type { ResNet18 } from '../model/resnet18';

export interface FreezePlan {
  /** Names of the parameters the optimizer updates, in state-dict order. */
  trainable: string[];
  /** Stages whose batch norms run in train mode during training steps. */
  trainStages: ReadonlySet<Stage>;
}

export function freezePlan(freeze: JobSpec['freeze'], model: ResNet18): FreezePlan {
  let stages: Stage[];
  switch (freeze.mode) {
    case 'head':
      stages = [];
      break;
    case 'partial':
      stages = BACKBONE_STAGES.slice(BACKBONE_STAGES.length - freeze.trainableStages) as Stage[];
      break;
    case 'full':
      stages = [...BACKBONE_STAGES];
      break;
  }
  const open = new Set<Stage>([...stages, 'fc']);
  const parameters = new Set(model.parameterNames());
  const trainable = model.tensors.filter((d) => open.has(d.stage) && parameters.has(d.name)).map((d) => d.name);
  return { trainable, trainStages: new Set(stages) };
}
