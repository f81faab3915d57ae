// A task's question and its answer (DESIGN.md, *Human input*): which question is waiting, the
// answer the form may send, what an error answer means, and how long the task has waited.
import { formatInt } from "./format";
import type { ApiError } from "./problem";
import { laterStatus, statusFromEvents } from "./status";
import type { Question, Task, TaskStatus, TimelineEvent } from "./types";

/** The longest answer the API takes by default (longer: 413). The service's setting may differ,
 * so the form only says how close an answer is; the API decides. */
export const MAX_ANSWER_CHARS = 16_000;

const TERMINAL_TYPES = new Set(["task.succeeded", "task.failed", "task.cancelled"]);

interface Asked {
  /** The question asked last and not answered yet (nor ended by the task's end), if any. */
  pending: Question | null;
  /** Ids of the questions the timeline shows answered. */
  answered: Set<string>;
  /** The timeline shows the task's end: no question waits any more. */
  ended: boolean;
}

function scan(events: readonly TimelineEvent[]): Asked {
  let pending: Question | null = null;
  let ended = false;
  const answered = new Set<string>();
  for (const event of events) {
    const d = event.data;
    if (event.type === "task.input_requested" && typeof d.question_id === "string") {
      const text = typeof d.question === "string" ? d.question : "";
      pending = { id: d.question_id, text, asked_at: event.occurred_at };
    } else if (event.type === "task.input_provided" && typeof d.question_id === "string") {
      answered.add(d.question_id);
      if (pending?.id === d.question_id) pending = null;
    } else if (TERMINAL_TYPES.has(event.type)) {
      pending = null;
      ended = true;
    }
  }
  return { pending, answered, ended };
}

/**
 * The question to answer now, for a task shown as `waiting_for_input`: the timeline's (it is
 * live, the task record may lag it a moment), else the record's `question` unless the timeline
 * already shows it answered. Null for a task in any other status.
 */
export function pendingQuestion(task: Task, events: readonly TimelineEvent[]): Question | null {
  if (task.status !== "waiting_for_input") return null;
  const { pending, answered, ended } = scan(events);
  if (pending !== null || ended) return pending;
  const recorded = task.question ?? null;
  return recorded !== null && !answered.has(recorded.id) ? recorded : null;
}

/**
 * The status the task page shows: the record's, or the timeline's when that is further along
 * (`laterStatus`). One exception: a record that waits on a question the timeline has not reached
 * yet (its history still loading, or its feed a moment behind) keeps waiting, since the
 * timeline's `running` is then its past, not news; once the timeline shows that question
 * answered, or the task ended, the timeline wins again. Without it the question would vanish and
 * come back while the history loads.
 */
export function shownStatus(task: Task, events: readonly TimelineEvent[]): TaskStatus {
  const fromEvents = statusFromEvents(events);
  const question = task.question ?? null;
  if (task.status === "waiting_for_input" && question !== null && (fromEvents === "queued" || fromEvents === "running")) {
    const { answered, ended } = scan(events);
    if (!answered.has(question.id) && !ended) return task.status;
  }
  return laterStatus(task.status, fromEvents);
}

/**
 * A task's `question` after one of its live events: set by `task.input_requested`, gone once
 * answered, resumed or ended (the task list keeps its rows' questions this way).
 */
export function questionAfterEvent(current: Question | null, event: TimelineEvent): Question | null {
  const d = event.data;
  if (event.type === "task.input_requested" && typeof d.question_id === "string") {
    return { id: d.question_id, text: typeof d.question === "string" ? d.question : "", asked_at: event.occurred_at };
  }
  if (event.type === "task.input_provided" || event.type === "task.started" || TERMINAL_TYPES.has(event.type)) return null;
  return current;
}

/** Why an answer cannot be sent as it is, or null when it can. */
export function answerProblem(text: string): string | null {
  return text.trim() === "" ? "Enter an answer." : null;
}

/** A note on the answer's length once it nears the API's default limit, else null. */
export function answerLength(text: string): string | null {
  if (text.length <= MAX_ANSWER_CHARS * 0.9) return null;
  const over = text.length > MAX_ANSWER_CHARS ? " (the API may refuse it as too long)" : "";
  return `${formatInt(text.length)} characters; ${formatInt(MAX_ANSWER_CHARS)} are allowed by default${over}.`;
}

export interface AnswerError {
  /** One line that says what happened. */
  headline: string;
  /** What the API said, when it adds something. */
  detail: string | null;
  /** The question is gone (answered elsewhere, or the task moved on): the form is no use. */
  settled: boolean;
}

/** What an error answer to POST /v1/tasks/{id}/input means for the person answering. */
export function describeAnswerError(error: ApiError): AnswerError {
  const said = error.detail ?? null;
  switch (error.status) {
    case 409:
      return {
        headline: "This question has already been answered, or the task no longer waits for input.",
        detail: said,
        settled: true,
      };
    case 404:
      return { headline: "Task not found.", detail: said, settled: true };
    case 413:
      return { headline: "The answer is too long.", detail: said, settled: false };
    case 422: {
      const fields = error.errors.map((e) => e.message).join(" ");
      return { headline: "The answer was not accepted.", detail: fields || said, settled: false };
    }
    case 0:
      return { headline: "Cannot reach the API: the answer was not sent.", detail: said, settled: false };
    default:
      return { headline: error.summary, detail: null, settled: false };
  }
}

/**
 * Seconds the task spent waiting for answers up to `now` (each `task.input_requested` to its
 * `task.input_provided`, or to the end or `now` if none): waiting is not wall time.
 */
export function secondsWaiting(events: readonly TimelineEvent[], now: number): number {
  let total = 0;
  let since: number | null = null;
  for (const event of events) {
    const at = Date.parse(event.occurred_at);
    if (Number.isNaN(at)) continue;
    if (event.type === "task.input_requested") {
      since ??= at;
    } else if (since !== null && (event.type === "task.input_provided" || TERMINAL_TYPES.has(event.type))) {
      total += Math.max(0, at - since);
      since = null;
    }
  }
  if (since !== null) total += Math.max(0, now - since);
  return total / 1000;
}

/** When an unanswered question makes the task fail (`input_timeout`), if the task says. */
export function answerDeadline(question: Question, task: Task): Date | null {
  const wait = task.limits?.max_wait_seconds;
  const asked = Date.parse(question.asked_at);
  if (typeof wait !== "number" || !Number.isFinite(wait) || Number.isNaN(asked)) return null;
  return new Date(asked + wait * 1000);
}
