/** Number, time and size formatting shared by the pages (the user's locale, UTC-free local times). */

export function gpuHours(h: number): string {
  if (!Number.isFinite(h)) return '—';
  const abs = Math.abs(h);
  // a few seconds of GPU time must not read as nothing
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 0.1 || abs === 0 ? 2 : 4;
  return `${h.toFixed(digits)} GPU-h`;
}

/** Amounts have no currency in the API: shown as plain numbers, with more digits when small. */
export function money(amount: number | null | undefined): string {
  if (amount === null || amount === undefined || !Number.isFinite(amount)) return '—';
  return amount.toFixed(Math.abs(amount) < 1 ? 4 : 2);
}

export const moneyMicros = (micros: number | null | undefined) =>
  micros === null || micros === undefined ? '—' : money(micros / 1e6);

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function date(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleDateString(undefined, { dateStyle: 'medium' });
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "in 5 min", "3 h ago". */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(s);
  const v =
    abs < 60
      ? `${abs} s`
      : abs < 3600
        ? `${Math.round(abs / 60)} min`
        : abs < 86400 * 2
          ? `${(abs / 3600).toFixed(1)} h`
          : `${Math.round(abs / 86400)} days`;
  return s >= 0 ? `in ${v}` : `${v} ago`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export const percent = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)}%`;

/** A datetime-local input's value (local time, minutes) for a Date. */
export function toLocalInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export const shortId = (id: string) => id.slice(0, 8);
