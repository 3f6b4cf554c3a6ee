import { z } from 'zod';

const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * A date (`2026-11-01`, midnight UTC) or a date-time with an explicit offset (`2026-11-01T08:00:00Z`), as a Date.
 * Local times without an offset are refused: they would mean different instants on different servers.
 */
export const IsoDate = z
  .string()
  .regex(ISO, 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time with Z or an offset')
  .transform((s, ctx) => {
    const d = new Date(s);
    const day = s.slice(0, 10);
    const calendar = new Date(`${day}T00:00:00Z`);
    if (Number.isNaN(d.getTime()) || Number.isNaN(calendar.getTime()) || calendar.toISOString().slice(0, 10) !== day) {
      ctx.addIssue({ code: 'custom', message: 'is not a real date' });
      return z.NEVER;
    }
    return d;
  });
