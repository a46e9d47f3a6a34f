/**
 * How the views write the catalog's values: partitions, times, sizes, durations, and
 * the search box's `key=value` filters. Pure functions (unit-tested).
 */

/** `{"blessed": "true", "site": "lab"}` → `blessed=true · site=lab` ('' when none). */
export function partitionText(partitions: Record<string, string>): string {
  return Object.entries(partitions)
    .map(([key, value]) => `${key}=${value}`)
    .join(' · ');
}

/**
 * Parse the filter box: whitespace- or comma-separated `key=value` pairs.
 * Returns the pairs and the entries that are not `key=value` (shown as a problem).
 *
 *     parseFilters('blessed=true, site=lab') // {partitions: {blessed: 'true', site: 'lab'}, invalid: []}
 */
export function parseFilters(text: string): {
  partitions: Record<string, string>;
  invalid: string[];
} {
  const partitions: Record<string, string> = {};
  const invalid: string[] = [];
  for (const item of text.split(/[\s,]+/)) {
    if (!item) {
      continue;
    }
    const at = item.indexOf('=');
    if (at <= 0) {
      invalid.push(item);
      continue;
    }
    partitions[item.slice(0, at)] = item.slice(at + 1);
  }
  return { partitions, invalid };
}

/** An ISO time as the reader's local date and time ('' for none). */
export function timeText(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** Bytes in binary units: 0 B, 512 B, 1.5 KiB, 3.2 MiB ('' for none). */
export function sizeText(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min` ('' for none). */
export function durationText(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, '0')} s`;
  }
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** A short id for display: the first 8 characters. */
export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : '';
}

/** `name@3` → `{name, version: 3}`; null when it is not a pinned ref. */
export function parseRef(ref: string): { name: string; version: number } | null {
  const match = /^([^@\s]+)@(\d+)$/.exec(ref.trim());
  return match ? { name: match[1], version: Number(match[2]) } : null;
}

/** The last part of a path (a notebook's file name). */
export function baseName(path: string | null | undefined): string {
  if (!path) {
    return '';
  }
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}
