import fc from 'fast-check';
import {
  addUsage,
  type DecayedUsage,
  decayedUsageOf,
  decayFactor,
  fairShareKey,
  NO_USAGE,
  readUsage,
  type UsageEvent,
} from '../src/admission';
import { GpulabError } from '../src/errors';

const DAY_S = 86_400;
const T0 = Date.parse('2026-11-01T00:00:00Z');

describe('decayed usage', () => {
  it('halves every half-life and never grows', () => {
    expect(decayFactor(0, DAY_S)).toBe(1);
    expect(decayFactor(DAY_S * 1000, DAY_S)).toBeCloseTo(0.5, 12);
    expect(decayFactor(3 * DAY_S * 1000, DAY_S)).toBeCloseTo(0.125, 12);
    expect(decayFactor(-5000, DAY_S)).toBe(1);
    expect(decayFactor(10 ** 12, Number.POSITIVE_INFINITY)).toBe(1);
  });

  it('rejects a half-life that is not positive', () => {
    expect(() => decayFactor(1, 0)).toThrow(GpulabError);
    expect(() => decayFactor(1, -1)).toThrow(/half-life/);
  });

  it('sums events with their own decay (batch form)', () => {
    const events: UsageEvent[] = [
      { gpuSeconds: 3600, at: new Date(T0) },
      { gpuSeconds: 7200, at: new Date(T0 + DAY_S * 1000) },
    ];
    // At T0 + 2 days: 3600 × 1/4 + 7200 × 1/2.
    expect(decayedUsageOf(events, new Date(T0 + 2 * DAY_S * 1000), DAY_S)).toBeCloseTo(900 + 3600, 9);
  });

  it('keeps one number per user: the incremental form equals the batch sum, in any arrival order', () => {
    const event = fc.record({
      gpuSeconds: fc.integer({ min: 0, max: 10 * 3600 }),
      at: fc.integer({ min: 0, max: 60 * DAY_S * 1000 }).map((ms) => new Date(T0 + ms)),
    });
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 30 }),
        fc.integer({ min: 60, max: 30 * DAY_S }),
        fc.integer({ min: 0, max: 30 * DAY_S * 1000 }),
        (events, halfLife, after) => {
          const last = events.reduce((m, e) => Math.max(m, e.at.getTime()), T0);
          const now = new Date(last + after);
          let stored: DecayedUsage = NO_USAGE;
          for (const e of events) stored = addUsage(stored, e, halfLife);
          const batch = decayedUsageOf(events, now, halfLife);
          const incremental = readUsage(stored, now, halfLife);
          expect(Math.abs(incremental - batch)).toBeLessThanOrEqual(1e-9 * Math.max(1, batch));
        },
      ),
    );
  });

  it('a read does not change the stored value', () => {
    const stored = { value: 100, at: new Date(T0) };
    expect(readUsage(stored, new Date(T0 + DAY_S * 1000), DAY_S)).toBeCloseTo(50, 9);
    expect(stored.value).toBe(100);
  });
});

describe('fair-share key', () => {
  it('is usage per unit of share', () => {
    expect(fairShareKey(100, 1)).toBe(100);
    expect(fairShareKey(100, 4)).toBe(25);
    expect(fairShareKey(0, 1)).toBe(0);
  });

  it('puts a user without a share after everyone', () => {
    expect(fairShareKey(0, 0)).toBe(Number.POSITIVE_INFINITY);
    expect(fairShareKey(5, -1)).toBe(Number.POSITIVE_INFINITY);
    expect(fairShareKey(5, Number.NaN)).toBe(Number.POSITIVE_INFINITY);
  });
});
