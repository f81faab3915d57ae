import { describe, expect, it } from "vitest";
import { ApiError } from "./problem";
import {
  MAX_ANSWER_CHARS,
  answerDeadline,
  answerLength,
  answerProblem,
  describeAnswerError,
  pendingQuestion,
  questionAfterEvent,
  secondsWaiting,
  shownStatus,
} from "./question";
import type { Task, TaskStatus, TimelineEvent } from "./types";

const TASK = "0b5c6a1e-4a39-4d7c-9d0e-6f1f1c0a1b2c";
const Q1 = "7d1f2c9e-1111-4a39-9d0e-6f1f1c0a1b2c";
const Q2 = "7d1f2c9e-2222-4a39-9d0e-6f1f1c0a1b2c";
const T0 = 1_700_000_000_000;

function ev(seq: number, type: string, data: Record<string, unknown> = {}, at = T0 + seq * 1000): TimelineEvent {
  return { type, seq, task_id: TASK, occurred_at: new Date(at).toISOString(), data };
}

function task(status: TaskStatus, over: Partial<Task> = {}): Task {
  const zero = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: 0 };
  return {
    id: TASK,
    status,
    prompt: "Pick a region\n/ask Which region?",
    model: "claude-sonnet-4-5",
    metadata: {},
    limits: { max_turns: 10, max_output_tokens: 1000, max_wall_seconds: 600, max_cost_usd: null, max_wait_seconds: 3600 },
    created_at: new Date(T0).toISOString(),
    updated_at: new Date(T0).toISOString(),
    started_at: new Date(T0).toISOString(),
    finished_at: null,
    usage: zero,
    error: null,
    result: null,
    question: null,
    ...over,
  };
}

const asked = (seq: number, id = Q1, question = "Which region?") =>
  ev(seq, "task.input_requested", { attempt: 1, step: 1, question_id: id, question });
const answered = (seq: number, id = Q1, text = "eu-west-1") => ev(seq, "task.input_provided", { question_id: id, text });

describe("shownStatus", () => {
  const start = [ev(1, "task.submitted"), ev(2, "task.started", { attempt: 1 })];
  const question = { id: Q1, text: "Which region?", asked_at: new Date(T0).toISOString() };
  const waiting = task("waiting_for_input", { question });

  it("keeps a record's question while the timeline has not reached it (history loading)", () => {
    expect(shownStatus(waiting, [])).toBe("waiting_for_input");
    expect(shownStatus(waiting, start)).toBe("waiting_for_input");
    expect(shownStatus(waiting, [...start, ev(3, "task.progressed", { attempt: 1, step: 1 })])).toBe("waiting_for_input");
    expect(shownStatus(waiting, [...start, asked(3)])).toBe("waiting_for_input");
  });

  it("follows the timeline once it shows the question answered or the task ended", () => {
    expect(shownStatus(waiting, [...start, asked(3), answered(4)])).toBe("running");
    expect(shownStatus(waiting, [...start, asked(3), ev(4, "task.cancel_requested")])).toBe("cancelling");
    expect(shownStatus(waiting, [...start, asked(3), ev(4, "task.failed", { code: "input_timeout" })])).toBe("failed");
  });

  it("is otherwise the later of the record's and the timeline's", () => {
    expect(shownStatus(task("running"), [...start, asked(3)])).toBe("waiting_for_input"); // the record lags
    expect(shownStatus(task("running"), start)).toBe("running");
    expect(shownStatus(task("succeeded"), start)).toBe("succeeded");
    expect(shownStatus(task("waiting_for_input"), start)).toBe("running"); // no question to keep
  });
});

describe("pendingQuestion", () => {
  const start = [ev(1, "task.submitted"), ev(2, "task.started", { attempt: 1 })];

  it("is the timeline's question while the task waits, with when it was asked", () => {
    const events = [...start, asked(3)];
    expect(pendingQuestion(task("waiting_for_input"), events)).toEqual({
      id: Q1,
      text: "Which region?",
      asked_at: new Date(T0 + 3000).toISOString(),
    });
  });

  it("is none once the task runs again or ended", () => {
    const events = [...start, asked(3)];
    expect(pendingQuestion(task("running"), events)).toBeNull();
    expect(pendingQuestion(task("cancelled"), events)).toBeNull();
  });

  it("is none once the timeline shows the answer, even if the record still has the question", () => {
    const question = { id: Q1, text: "Which region?", asked_at: new Date(T0).toISOString() };
    const waiting = task("waiting_for_input", { question });
    expect(pendingQuestion(waiting, [...start, asked(3), answered(4)])).toBeNull();
    expect(pendingQuestion(waiting, [...start, asked(3), ev(4, "task.failed", { code: "input_timeout" })])).toBeNull();
  });

  it("comes from the task record while the timeline has not caught up", () => {
    const question = { id: Q1, text: "Which region?", asked_at: new Date(T0).toISOString() };
    expect(pendingQuestion(task("waiting_for_input", { question }), start)).toBe(question);
    expect(pendingQuestion(task("waiting_for_input"), start)).toBeNull(); // nothing to answer yet
  });

  it("is the latest question when a task asks again after an answer", () => {
    const events = [...start, asked(3), answered(4), ev(5, "task.started", { attempt: 2 }), asked(6, Q2, "Which zone?")];
    expect(pendingQuestion(task("waiting_for_input"), events)).toMatchObject({ id: Q2, text: "Which zone?" });
  });
});

describe("questionAfterEvent", () => {
  it("sets the question when asked and drops it once answered, resumed or ended", () => {
    const question = questionAfterEvent(null, asked(3));
    expect(question).toEqual({ id: Q1, text: "Which region?", asked_at: new Date(T0 + 3000).toISOString() });
    expect(questionAfterEvent(question, ev(4, "artifact.published"))).toBe(question);
    expect(questionAfterEvent(question, answered(4))).toBeNull();
    expect(questionAfterEvent(question, ev(5, "task.started", { attempt: 2 }))).toBeNull();
    expect(questionAfterEvent(question, ev(5, "task.cancelled"))).toBeNull();
  });
});

describe("answerProblem and answerLength", () => {
  it("refuses a blank answer, as the API would", () => {
    expect(answerProblem("")).toBe("Enter an answer.");
    expect(answerProblem(" \n\t ")).toBe("Enter an answer.");
    expect(answerProblem("eu-west-1")).toBeNull();
  });

  it("leaves the length to the API (its limit is a setting) but says when it nears the default", () => {
    expect(answerProblem("x".repeat(MAX_ANSWER_CHARS + 1))).toBeNull();
    expect(answerLength("eu-west-1")).toBeNull();
    expect(answerLength("x".repeat(15_000))).toBe("15,000 characters; 16,000 are allowed by default.");
    expect(answerLength("x".repeat(16_001))).toBe("16,001 characters; 16,000 are allowed by default (the API may refuse it as too long).");
  });
});

describe("describeAnswerError", () => {
  it("says a 409 means the question was answered already and the form is no use", () => {
    const conflict = new ApiError({ status: 409, title: "Task not waiting for input", detail: "The task is running, not waiting_for_input." });
    expect(describeAnswerError(conflict)).toEqual({
      headline: "This question has already been answered, or the task no longer waits for input.",
      detail: "The task is running, not waiting_for_input.",
      settled: true,
    });
  });

  it("keeps the form for errors the person can fix or retry", () => {
    const tooLong = describeAnswerError(new ApiError({ status: 413, title: "Answer too large", detail: "At most 16000 characters." }));
    expect(tooLong).toMatchObject({ headline: "The answer is too long.", detail: "At most 16000 characters.", settled: false });
    const invalid = describeAnswerError(
      new ApiError({ status: 422, title: "Unprocessable Content", errors: [{ location: "body.text", message: "the answer must not be blank" }] }),
    );
    expect(invalid).toMatchObject({ detail: "the answer must not be blank", settled: false });
    expect(describeAnswerError(new ApiError({ status: 0, title: "Network error" })).settled).toBe(false);
    const busy = describeAnswerError(new ApiError({ status: 429, title: "Too Many Requests", retryAfter: 3 }));
    expect(busy).toMatchObject({ headline: "Too Many Requests (try again in 3 s)", settled: false });
    expect(describeAnswerError(new ApiError({ status: 404, title: "Not Found" })).settled).toBe(true);
  });
});

describe("secondsWaiting", () => {
  it("adds up the time between each question and its answer, and the open wait so far", () => {
    const events = [ev(1, "task.started", {}, T0), asked(2), answered(3, Q1), asked(4, Q2), answered(10, Q2)];
    expect(secondsWaiting(events, T0 + 60_000)).toBe(1 + 6);
    const open = [ev(1, "task.started", {}, T0), asked(2)];
    expect(secondsWaiting(open, T0 + 12_000)).toBe(10);
    const timedOut = [asked(2), ev(5, "task.failed", { code: "input_timeout" })];
    expect(secondsWaiting(timedOut, T0 + 60_000)).toBe(3);
    expect(secondsWaiting([], T0)).toBe(0);
  });
});

describe("answerDeadline", () => {
  it("is the question's time plus the task's max_wait_seconds, when the task has one", () => {
    const question = { id: Q1, text: "?", asked_at: new Date(T0).toISOString() };
    expect(answerDeadline(question, task("waiting_for_input"))?.getTime()).toBe(T0 + 3_600_000);
    expect(answerDeadline(question, task("waiting_for_input", { limits: null }))).toBeNull();
  });
});
