// A task's timeline as the console holds it: events in seq order, each seq once, whatever order
// and however often they arrive (history after a resubscribe overlaps what was seen live).
import { formatBytes, formatInt, formatUsd } from "./format";
import type { TimelineEvent, Usage } from "./types";

export interface Timeline {
  /** Events sorted by seq, no two with the same seq. */
  events: readonly TimelineEvent[];
  /**
   * The highest seq up to which nothing is missing (1..contiguous all present): what to resume
   * after. Events past a gap are kept and shown, and resuming from here fills the gap.
   */
  contiguous: number;
  /** A terminal event or the server's `end` frame was seen. */
  ended: boolean;
}

const TERMINAL_TYPES = new Set(["task.succeeded", "task.failed", "task.cancelled"]);

export const EMPTY_TIMELINE: Timeline = { events: [], contiguous: 0, ended: false };

/** A frame from the server is a timeline event (not a control frame) when it has these. */
export function isTimelineEvent(frame: unknown): frame is TimelineEvent {
  if (typeof frame !== "object" || frame === null) return false;
  const f = frame as Record<string, unknown>;
  return (
    typeof f.type === "string" &&
    typeof f.seq === "number" &&
    Number.isInteger(f.seq) &&
    f.seq > 0 &&
    typeof f.task_id === "string"
  );
}

function contiguousFrom(events: readonly TimelineEvent[], start: number): number {
  let n = start;
  for (const event of events) {
    if (event.seq <= n) continue;
    if (event.seq === n + 1) n = event.seq;
    else break;
  }
  return n;
}

/**
 * Adds events to a timeline: keeps seq order, drops seqs it already has (the first copy wins:
 * events are immutable), and returns the same object when nothing was new (cheap re-renders).
 */
export function mergeEvents(timeline: Timeline, incoming: readonly TimelineEvent[]): Timeline {
  if (incoming.length === 0) return timeline;
  const have = new Set(timeline.events.map((e) => e.seq));
  const fresh: TimelineEvent[] = [];
  for (const event of incoming) {
    if (have.has(event.seq)) continue;
    have.add(event.seq);
    fresh.push(event);
  }
  if (fresh.length === 0) return timeline;
  const last = timeline.events[timeline.events.length - 1];
  let events: TimelineEvent[];
  fresh.sort((a, b) => a.seq - b.seq);
  const first = fresh[0];
  if (last === undefined || (first !== undefined && first.seq > last.seq)) {
    events = [...timeline.events, ...fresh]; // the usual case: appending live events
  } else {
    events = [...timeline.events, ...fresh].sort((a, b) => a.seq - b.seq);
  }
  return {
    events,
    contiguous: contiguousFrom(events, timeline.contiguous),
    ended: timeline.ended || fresh.some((e) => TERMINAL_TYPES.has(e.type)),
  };
}

export function markEnded(timeline: Timeline): Timeline {
  return timeline.ended ? timeline : { ...timeline, ended: true };
}

/** Missing seqs below the highest one seen (for showing a gap while it is being refilled). */
export function missingSeqs(timeline: Timeline): number[] {
  const missing: number[] = [];
  let expected = 1;
  for (const event of timeline.events) {
    for (; expected < event.seq; expected++) missing.push(expected);
    expected = event.seq + 1;
  }
  return missing;
}

// --- describing events for people

export interface EventText {
  label: string;
  detail: string;
  tone: "info" | "good" | "bad" | "warn";
}

function str(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function usageText(data: Record<string, unknown>): string {
  const usage = data.usage;
  const parts: string[] = [];
  if (typeof usage === "object" && usage !== null) {
    const u = usage as Record<string, unknown>;
    const input = num(u.input_tokens);
    const output = num(u.output_tokens);
    if (input !== null && output !== null && input + output > 0) {
      parts.push(`${formatInt(input)} in / ${formatInt(output)} out tokens`);
    }
  }
  const cost = num(data.cost_usd);
  if (cost !== null && cost > 0) parts.push(formatUsd(cost));
  return parts.join(", ");
}

/** "main text (usage)", "main text", "usage" or "". */
function withUsage(text: string, data: Record<string, unknown>): string {
  const usage = usageText(data);
  if (usage === "") return text;
  return text === "" ? usage : `${text} (${usage})`;
}

export function describeEvent(event: TimelineEvent): EventText {
  const d = event.data;
  switch (event.type) {
    case "task.submitted":
      return { label: "Submitted", detail: str(d.model) ? `model ${String(d.model)}` : "", tone: "info" };
    case "task.started": {
      const attempt = num(d.attempt);
      const worker = str(d.worker_id);
      const parts = [attempt !== null ? `attempt ${attempt}` : "", worker ? `on ${worker}` : ""];
      // an attempt that picks the conversation up again after the answer to a question
      const label = resumedStep(event) !== null ? "Resumed after your answer" : "Started";
      return { label, detail: parts.filter(Boolean).join(" "), tone: "info" };
    }
    case "task.progressed": {
      const step = num(d.step);
      return {
        label: step !== null ? `Step ${step}` : "Progress",
        detail: withUsage(str(d.message) ?? "", d),
        tone: "info",
      };
    }
    case "task.cancel_requested":
      return { label: "Cancel requested", detail: str(d.reason) ?? "", tone: "warn" };
    case "task.succeeded":
      return { label: "Succeeded", detail: withUsage(str(d.summary) ?? "", d), tone: "good" };
    case "task.failed": {
      const code = str(d.code);
      const budget = str(d.budget);
      const message = str(d.message) ?? "";
      const head = code ? `${code}${budget ? ` (${budget})` : ""}: ` : "";
      return { label: "Failed", detail: withUsage(`${head}${message}`, d), tone: "bad" };
    }
    case "task.cancelled":
      return { label: "Cancelled", detail: withUsage(str(d.reason) ?? "", d), tone: "warn" };
    case "task.input_requested":
      return { label: "Asked a question", detail: str(d.question) ?? "", tone: "warn" };
    case "task.input_provided":
      return { label: "Answered", detail: str(d.text) ?? "", tone: "info" };
    case "artifact.published": {
      const size = num(d.size);
      const name = str(d.name) ?? "artifact";
      return { label: "Artifact", detail: size !== null ? `${name} (${formatBytes(size)})` : name, tone: "info" };
    }
    default:
      return { label: event.type, detail: "", tone: "info" };
  }
}

/** The step a `task.started` resumes after (its `resumed.step`), or null for a fresh attempt. */
export function resumedStep(event: TimelineEvent): number | null {
  if (event.type !== "task.started") return null;
  const resumed = event.data.resumed;
  if (typeof resumed !== "object" || resumed === null) return null;
  return num((resumed as Record<string, unknown>).step) ?? 0;
}

const STEP_EVENTS = new Set(["task.started", "task.progressed", "task.input_requested"]);

/**
 * Steps (model calls) of the task's latest attempt, from its `task.progressed` events: what the
 * max_turns budget is counted against (a redelivered task starts a new attempt). An attempt
 * resumed after an answer carries on from the step that asked (`resumed.step`), so those count.
 */
export function stepsOfLatestAttempt(events: readonly TimelineEvent[]): number {
  let attempt = 0;
  for (const event of events) {
    const a = num(event.data.attempt);
    if (STEP_EVENTS.has(event.type) && a !== null && a > attempt) attempt = a;
  }
  let steps = 0;
  for (const event of events) {
    const a = num(event.data.attempt);
    if (a !== null && a !== attempt) continue;
    const step = event.type === "task.started" ? resumedStep(event) : STEP_EVENTS.has(event.type) ? num(event.data.step) : null;
    if (step !== null && step > steps) steps = step;
  }
  return steps;
}

/**
 * The usage to show while a task runs: the task JSON's (updated by the service when the task
 * ends), or, when larger, what the last `task.progressed` (or `task.input_requested`, which
 * carries the usage so far too) reported.
 */
export function liveUsage(usage: Usage, events: readonly TimelineEvent[]): Usage {
  let latest: TimelineEvent | undefined;
  for (const event of events) if (event.type === "task.progressed" || event.type === "task.input_requested") latest = event;
  const reported = latest?.data.usage;
  if (latest === undefined || typeof reported !== "object" || reported === null) return usage;
  const r = reported as Record<string, unknown>;
  const pick = (have: number, seen: unknown) => Math.max(have, num(seen) ?? 0);
  return {
    input_tokens: pick(usage.input_tokens, r.input_tokens),
    output_tokens: pick(usage.output_tokens, r.output_tokens),
    cache_creation_input_tokens: pick(usage.cache_creation_input_tokens, r.cache_creation_input_tokens),
    cache_read_input_tokens: pick(usage.cache_read_input_tokens, r.cache_read_input_tokens),
    cost_usd: pick(usage.cost_usd, latest.data.cost_usd),
  };
}
