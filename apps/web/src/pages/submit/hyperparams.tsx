import type { Flavor } from '@gpulab/sdk';
import type { GroupSummary } from '../../api/types';
import { Field } from '../../components/field';
import { NumberField } from '../../components/number-field';
import { money } from '../../format';
import { BACKEND_CHOICES, type SpecForm, withOptimizer } from './spec-form';

interface Props {
  form: SpecForm;
  onChange: (f: SpecForm) => void;
  groups: GroupSummary[];
  flavors: Flavor[];
}

/**
 * The hyperparameters, each with the seed recipe's default (torchvision's transfer-learning tutorial: SGD lr 0.001,
 * momentum 0.9, StepLR(7, 0.1), 224 px, 25 epochs, batch 32, only the new head trains) and a line on what it does.
 */
export function Hyperparams({ form: f, onChange, groups, flavors }: Props) {
  const set = <K extends keyof SpecForm>(k: K, v: SpecForm[K]) => onChange({ ...f, [k]: v });
  const group = groups.find((g) => g.id === f.group);
  return (
    <>
      <fieldset>
        <legend>Basics</legend>
        <div className="grid-3">
          <Field label="Job name" help="Optional; shown in lists.">
            {({ id, helpId }) => (
              <input
                id={id}
                aria-describedby={helpId}
                maxLength={120}
                value={f.name}
                onChange={(e) => set('name', e.target.value)}
              />
            )}
          </Field>
          <Field label="Charge to group" help="Whose GPU-hours this job uses.">
            {({ id, helpId }) => (
              <select id={id} aria-describedby={helpId} value={f.group} onChange={(e) => set('group', e.target.value)}>
                {groups.map((g) => (
                  <option key={g.id} value={g.id}>
                    {g.name}
                    {g.quota ? ` (${g.quota.freeHours.toFixed(2)} GPU-h free)` : ''}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <NumberField
            label="Epochs"
            integer
            min={1}
            max={500}
            value={f.epochs}
            onChange={(v) => set('epochs', v)}
            help="Passes over the training images. Default 25."
          />
          <NumberField
            label="Image size (px)"
            integer
            min={16}
            max={512}
            value={f.imageSize}
            onChange={(v) => set('imageSize', v)}
            help="Images are resized to this square. 224 is ResNet's native size; 32–64 trains much faster."
          />
          <NumberField
            label="Batch size"
            integer
            min={1}
            max={512}
            value={f.batchSize}
            onChange={(v) => set('batchSize', v)}
            help="Images per step. Default 32; lower it if memory runs out."
          />
          <Field
            label="Which layers train"
            help="Head: only the new classifier (fast, small data). Partial: the last stages too. Full: everything."
          >
            {({ id, helpId }) => (
              <select
                id={id}
                aria-describedby={helpId}
                value={f.freeze}
                onChange={(e) => set('freeze', e.target.value as SpecForm['freeze'])}
              >
                <option value="head">head only (default)</option>
                <option value="partial">last stages + head</option>
                <option value="full">the whole network</option>
              </select>
            )}
          </Field>
          {f.freeze === 'partial' ? (
            <NumberField
              label="Trainable stages"
              integer
              min={1}
              max={4}
              value={f.trainableStages}
              onChange={(v) => set('trainableStages', v)}
              help="How many of layer1..layer4, counted from the top."
            />
          ) : null}
        </div>
      </fieldset>
      <fieldset>
        <legend>Optimizer and schedule</legend>
        <div className="grid-3">
          <Field label="Optimizer" help="SGD with momentum is the recipe's; AdamW converges with less tuning.">
            {({ id, helpId }) => (
              <select
                id={id}
                aria-describedby={helpId}
                value={f.optimizer}
                onChange={(e) => onChange(withOptimizer(f, e.target.value as SpecForm['optimizer']))}
              >
                <option value="sgd">SGD (default)</option>
                <option value="adamw">AdamW</option>
              </select>
            )}
          </Field>
          <NumberField
            label="Learning rate"
            min={0.0000001}
            max={10}
            value={f.lr}
            onChange={(v) => set('lr', v)}
            help="Step size. Default 0.001."
          />
          {f.optimizer === 'sgd' ? (
            <NumberField
              label="Momentum"
              min={0}
              max={0.999}
              value={f.momentum}
              onChange={(v) => set('momentum', v)}
              help="Default 0.9."
            />
          ) : null}
          <NumberField
            label="Weight decay"
            min={0}
            max={1}
            value={f.weightDecay}
            onChange={(v) => set('weightDecay', v)}
            help={f.optimizer === 'sgd' ? 'L2 penalty. Default 0.' : 'Decoupled decay. Default 0.01.'}
          />
          <Field
            label="Learning-rate schedule"
            help="Step: multiply by gamma every N epochs (default: ×0.1 every 7). Cosine: decay smoothly to 0."
          >
            {({ id, helpId }) => (
              <select
                id={id}
                aria-describedby={helpId}
                value={f.schedule}
                onChange={(e) => set('schedule', e.target.value as SpecForm['schedule'])}
              >
                <option value="step">step (default)</option>
                <option value="cosine">cosine</option>
                <option value="constant">constant</option>
              </select>
            )}
          </Field>
          {f.schedule === 'step' ? (
            <>
              <NumberField
                label="Step every (epochs)"
                integer
                min={1}
                value={f.stepSize}
                onChange={(v) => set('stepSize', v)}
                help="Default 7."
              />
              <NumberField
                label="Gamma"
                min={0.000001}
                max={1}
                value={f.gamma}
                onChange={(v) => set('gamma', v)}
                help="Factor at each step. Default 0.1."
              />
            </>
          ) : null}
          {f.schedule === 'cosine' ? (
            <NumberField
              label="Warm-up epochs"
              integer
              min={0}
              value={f.warmupEpochs}
              onChange={(v) => set('warmupEpochs', v)}
              help="Linear ramp before the decay. Default 0."
            />
          ) : null}
        </div>
      </fieldset>
      <fieldset>
        <legend>Resources</legend>
        <div className="grid-3">
          <Field label="GPU type" help="Price per GPU-hour in brackets.">
            {({ id, helpId }) => (
              <select
                id={id}
                aria-describedby={helpId}
                value={f.flavor}
                onChange={(e) => set('flavor', e.target.value)}
              >
                {flavors.map((fl) => (
                  <option key={fl.name} value={fl.name}>
                    {fl.name} ({money(fl.pricePerGpuHour)}/GPU-h, {fl.capacity - fl.inUse} of {fl.capacity} free now)
                  </option>
                ))}
                {flavors.some((fl) => fl.name === f.flavor) ? null : <option value={f.flavor}>{f.flavor}</option>}
              </select>
            )}
          </Field>
          <NumberField
            label="GPUs"
            integer
            min={1}
            max={8}
            value={f.gpus}
            onChange={(v) => set('gpus', v)}
            help="Default 1."
          />
          <Field
            label="Max runtime (hours)"
            help={`The job stops after this; max runtime × GPUs is held from your quota while it runs. Empty: the group's default (${group?.defaultMaxHours ?? '?'} h).`}
          >
            {({ id, helpId }) => (
              <input
                id={id}
                aria-describedby={helpId}
                type="number"
                inputMode="decimal"
                min={0.01}
                max={168}
                step="any"
                value={f.maxHours}
                placeholder={group ? String(group.defaultMaxHours) : ''}
                onChange={(e) => set('maxHours', e.target.value)}
              />
            )}
          </Field>
        </div>
      </fieldset>
      <details className="advanced">
        <summary>Advanced: augmentation, regularisation, seed, backend</summary>
        <div className="grid-3">
          <label className="inline">
            <input
              type="checkbox"
              checked={f.randomResizedCrop}
              onChange={(e) => set('randomResizedCrop', e.target.checked)}
            />{' '}
            Random resized crop (default on)
          </label>
          <label className="inline">
            <input
              type="checkbox"
              checked={f.horizontalFlip}
              onChange={(e) => set('horizontalFlip', e.target.checked)}
            />{' '}
            Horizontal flip (default on)
          </label>
          <NumberField
            label="Label smoothing"
            min={0}
            max={0.5}
            value={f.labelSmoothing}
            onChange={(v) => set('labelSmoothing', v)}
            help="0–0.5. Default 0."
          />
          <label className="inline">
            <input type="checkbox" checked={f.earlyStopping} onChange={(e) => set('earlyStopping', e.target.checked)} />{' '}
            Stop early when validation loss stalls
          </label>
          {f.earlyStopping ? (
            <NumberField
              label="Patience (epochs)"
              integer
              min={1}
              max={100}
              value={f.patience}
              onChange={(v) => set('patience', v)}
              help="Epochs without improvement before stopping."
            />
          ) : null}
          <NumberField
            label="Seed"
            integer
            min={0}
            max={2147483647}
            value={f.seed}
            onChange={(v) => set('seed', v)}
            help="Same seed, same data order and augmentation. Default 42."
          />
          <Field label="Backend" help="Auto picks the fastest the machine has (GPU where there is one).">
            {({ id, helpId }) => (
              <select
                id={id}
                aria-describedby={helpId}
                value={f.backend}
                onChange={(e) => set('backend', e.target.value as SpecForm['backend'])}
              >
                {BACKEND_CHOICES.map((b) => (
                  <option key={b} value={b}>
                    {b}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
      </details>
    </>
  );
}
