// Numbers, money, sizes and times for people.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function formatInt(n: number): string {
  return integer.format(n);
}

/**
 * A USD amount: cents for $1 and more, more digits below, so that a small task's cost is not
 * shown as $0.00 ($0.0042). Zero is "$0.00".
 */
export function formatUsd(amount: number): string {
  if (!Number.isFinite(amount)) return "—";
  const sign = amount < 0 ? "-" : "";
  const abs = Math.abs(amount);
  if (abs > 0 && abs < 0.000001) return `${sign}<$0.000001`;
  let digits = 2;
  if (abs > 0 && abs < 1) {
    // two significant digits, at least cents, at most 6 decimals
    digits = Math.min(6, Math.max(2, 1 - Math.floor(Math.log10(abs))));
  }
  const text = abs.toFixed(digits);
  // drop trailing zeros beyond cents: 0.0100 -> 0.01
  const trimmed = digits > 2 ? text.replace(/(\.\d\d\d*?)0+$/, "$1") : text;
  return `${sign}$${trimmed}`;
}

/** Whole percent of a budget used, capped to what a progress bar shows (0-100); null: no budget. */
export function percentOf(used: number, limit: number | null | undefined): number | null {
  if (limit === null || limit === undefined || !(limit > 0)) return null;
  return Math.min(100, Math.max(0, Math.round((used / limit) * 100)));
}

export interface BudgetLine {
  /** "$0.0042 of $1.00" or "$0.0042 (no limit)" */
  text: string;
  /** 0-100, or null when there is no limit. */
  percent: number | null;
  /** true once the usage reached the limit. */
  exhausted: boolean;
}

export function budgetLine(
  used: number,
  limit: number | null | undefined,
  format: (n: number) => string,
): BudgetLine {
  const percent = percentOf(used, limit);
  if (limit === null || limit === undefined || percent === null) {
    return { text: `${format(used)} (no limit)`, percent: null, exhausted: false };
  }
  return {
    text: `${format(used)} of ${format(limit)} (${percent}%)`,
    percent,
    exhausted: used >= limit,
  };
}

export function formatBytes(size: number): string {
  if (!Number.isFinite(size) || size < 0) return "—";
  if (size < 1024) return `${size} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(1)} ${units[unit] ?? "TB"}`;
}

/** 45 s, 3 min 05 s, 2 h 03 min */
export function formatDuration(totalSeconds: number): string {
  if (!Number.isFinite(totalSeconds) || totalSeconds < 0) return "—";
  const s = Math.floor(totalSeconds);
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min ${String(s % 60).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Seconds between two ISO times (or until `now`); null without a start. */
export function elapsedSeconds(
  start: string | null,
  end: string | null,
  now: number = Date.now(),
): number | null {
  if (start === null) return null;
  const from = Date.parse(start);
  const to = end === null ? now : Date.parse(end);
  if (Number.isNaN(from) || Number.isNaN(to)) return null;
  return Math.max(0, (to - from) / 1000);
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** The first line of a prompt, cut to `max` characters. */
export function excerpt(text: string, max = 120): string {
  const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
  const trimmed = line.trim();
  return trimmed.length > max ? `${trimmed.slice(0, max - 1)}…` : trimmed;
}
