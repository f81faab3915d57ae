// Errors from the API: RFC 9457 problem details (application/problem+json), parsed defensively
// (a proxy in between may answer with HTML or nothing at all).

export interface FieldProblem {
  /** Where, e.g. `body.limits.max_turns` or `query.status`; "" when the server named none. */
  location: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | null;
  readonly errors: FieldProblem[];
  /** Seconds from a Retry-After header (429, 503), when given. */
  readonly retryAfter: number | null;

  constructor(init: {
    status: number;
    title: string;
    detail?: string | null;
    errors?: FieldProblem[];
    retryAfter?: number | null;
  }) {
    super(init.detail ?? init.title);
    this.name = "ApiError";
    this.status = init.status;
    this.title = init.title;
    this.detail = init.detail ?? null;
    this.errors = init.errors ?? [];
    this.retryAfter = init.retryAfter ?? null;
  }

  /** One line for people: the detail, else the title, plus when to try again. */
  get summary(): string {
    const text = this.detail ?? this.title;
    return this.retryAfter !== null ? `${text} (try again in ${this.retryAfter} s)` : text;
  }
}

const STATUS_TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | null {
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

/** Seconds from a Retry-After value: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - now) / 1000));
}

function fieldProblems(value: unknown): FieldProblem[] {
  if (!Array.isArray(value)) return [];
  const out: FieldProblem[] = [];
  for (const item of value) {
    if (!isRecord(item)) continue;
    const message = text(item.message) ?? text(item.msg) ?? text(item.detail);
    if (message === null) continue;
    let location = text(item.location) ?? "";
    if (location === "" && Array.isArray(item.loc)) {
      location = item.loc.map((part) => String(part)).join(".");
    }
    out.push({ location, message });
  }
  return out;
}

/** The ApiError for a non-2xx answer, from its status, headers and body text. */
export function problemFromResponse(
  status: number,
  body: string,
  headers: { get(name: string): string | null },
): ApiError {
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  let parsed: unknown = null;
  const contentType = headers.get("content-type") ?? "";
  if (body.trim() !== "" && /json/i.test(contentType)) {
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = null;
    }
  }
  const fallbackTitle = STATUS_TITLES[status] ?? `HTTP ${status}`;
  if (!isRecord(parsed)) {
    return new ApiError({ status, title: fallbackTitle, retryAfter });
  }
  const title = text(parsed.title) ?? fallbackTitle;
  // FastAPI's own errors use `detail` as a string or as the list of field errors.
  const detail = text(parsed.detail);
  const errors = fieldProblems(parsed.errors ?? (Array.isArray(parsed.detail) ? parsed.detail : null));
  return new ApiError({ status, title, detail, errors, retryAfter });
}

/** A network failure (no answer at all) as an ApiError with status 0. */
export function networkError(cause: unknown): ApiError {
  const reason = cause instanceof Error && cause.message !== "" ? `: ${cause.message}` : "";
  return new ApiError({ status: 0, title: "Network error", detail: `Could not reach the API${reason}` });
}

export interface FieldErrors {
  /** Messages per form field (a known field name such as `limits.max_turns`). */
  byField: Record<string, string[]>;
  /** Messages that belong to no known field, with where the server said they are. */
  other: string[];
}

/**
 * Spreads a problem's `errors[]` over a form's fields: `body.limits.max_turns` goes to the field
 * `limits.max_turns` when the form has it, else to the closest known parent (`metadata.foo` →
 * `metadata`); what matches nothing is kept in `other` (with its location).
 */
export function fieldErrors(errors: readonly FieldProblem[], fields: readonly string[]): FieldErrors {
  const known = new Set(fields);
  const byField: Record<string, string[]> = {};
  const other: string[] = [];
  for (const { location, message } of errors) {
    const parts = location.split(".").filter((p) => p !== "");
    if (parts[0] === "body" || parts[0] === "query" || parts[0] === "path") parts.shift();
    let matched: string | null = null;
    for (let n = parts.length; n > 0; n--) {
      const candidate = parts.slice(0, n).join(".");
      if (known.has(candidate)) {
        matched = candidate;
        break;
      }
    }
    if (matched === null) {
      other.push(location === "" ? message : `${location}: ${message}`);
    } else {
      (byField[matched] ??= []).push(message);
    }
  }
  return { byField, other };
}
