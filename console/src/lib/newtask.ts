// Building a NewTask body from the form's text fields (pure, so it is tested).
import type { NewTask } from "./types";

export interface NewTaskForm {
  prompt: string;
  model: string;
  maxTurns: string;
  maxOutputTokens: string;
  maxWallSeconds: string;
  maxCostUsd: string;
  maxWaitSeconds: string;
  metadata: { key: string; value: string }[];
}

export const LIMIT_FIELDS = [
  { name: "max_turns", form: "maxTurns", label: "Max turns", integer: true, min: 1, hint: "Model calls allowed (1–200 by default)." },
  { name: "max_output_tokens", form: "maxOutputTokens", label: "Max output tokens", integer: true, min: 1, hint: "Over all model calls (up to 200,000 by default)." },
  { name: "max_wall_seconds", form: "maxWallSeconds", label: "Max wall time (seconds)", integer: false, min: 1, hint: "How long the task may run (up to 21,600 by default)." },
  { name: "max_cost_usd", form: "maxCostUsd", label: "Max cost (USD)", integer: false, min: 0.01, hint: "Estimated spend allowed (0.01–100 by default); empty: no cost limit." },
  { name: "max_wait_seconds", form: "maxWaitSeconds", label: "Max wait for an answer (seconds)", integer: false, min: 1, hint: "How long the task may wait for your answer to a question before it fails (86,400, a day, by default); waiting is not wall time." },
] as const;

/** The form fields a server error can point at (problem `errors[].location` without `body.`). */
export const NEW_TASK_FIELDS = ["prompt", "model", "metadata", "limits", ...LIMIT_FIELDS.map((f) => `limits.${f.name}`)];

export type BuildResult = { ok: true; body: NewTask } | { ok: false; errors: Record<string, string[]> };

export function buildNewTask(form: NewTaskForm): BuildResult {
  const errors: Record<string, string[]> = {};
  const add = (field: string, message: string) => { (errors[field] ??= []).push(message); };

  if (form.prompt.trim() === "") add("prompt", "Enter a prompt.");

  const limits: NonNullable<NewTask["limits"]> = {};
  for (const field of LIMIT_FIELDS) {
    const text = form[field.form].trim();
    if (text === "") continue;
    const value = Number(text);
    if (!Number.isFinite(value)) {
      add(`limits.${field.name}`, "Enter a number, or leave it empty for the default.");
    } else if (field.integer && !Number.isInteger(value)) {
      add(`limits.${field.name}`, "Enter a whole number.");
    } else if (value < field.min) {
      add(`limits.${field.name}`, `At least ${field.min}.`);
    } else {
      limits[field.name] = value;
    }
  }

  const metadata: Record<string, string> = {};
  for (const row of form.metadata) {
    const key = row.key.trim();
    if (key === "" && row.value === "") continue;
    if (key === "") {
      add("metadata", "Each metadata value needs a key.");
    } else if (key in metadata) {
      add("metadata", `The key "${key}" is there twice.`);
    } else {
      metadata[key] = row.value;
    }
  }

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  const body: NewTask = { prompt: form.prompt };
  const model = form.model.trim();
  if (model !== "") body.model = model;
  if (Object.keys(limits).length > 0) body.limits = limits;
  if (Object.keys(metadata).length > 0) body.metadata = metadata;
  return { ok: true, body };
}

/** A random Idempotency-Key. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return `console-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The Idempotency-Key for a submission: the previous attempt's when the body is the same (a
 * retry after a network error or a 5xx must not make a second task), a new one otherwise.
 */
export function keyForAttempt(previous: { body: string; key: string } | null, body: string, make: () => string = newIdempotencyKey): { body: string; key: string } {
  return previous !== null && previous.body === body ? previous : { body, key: make() };
}
