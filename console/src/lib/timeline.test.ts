import { describe, expect, it } from "vitest";
import {
  EMPTY_TIMELINE,
  describeEvent,
  liveUsage,
  isTimelineEvent,
  markEnded,
  mergeEvents,
  missingSeqs,
  stepsOfLatestAttempt,
} from "./timeline";
import type { TimelineEvent } from "./types";

const TASK = "0b5c6a1e-4a39-4d7c-9d0e-6f1f1c0a1b2c";

function ev(seq: number, type = "task.progressed", data: Record<string, unknown> = {}): TimelineEvent {
  return { type, seq, task_id: TASK, occurred_at: new Date(1_700_000_000_000 + seq * 1000).toISOString(), data };
}

const seqs = (t: { events: readonly TimelineEvent[] }) => t.events.map((e) => e.seq);

describe("mergeEvents", () => {
  it("appends live events in order", () => {
    let t = mergeEvents(EMPTY_TIMELINE, [ev(1, "task.submitted")]);
    t = mergeEvents(t, [ev(2, "task.started")]);
    t = mergeEvents(t, [ev(3)]);
    expect(seqs(t)).toEqual([1, 2, 3]);
    expect(t.contiguous).toBe(3);
    expect(t.ended).toBe(false);
  });

  it("drops duplicates: history replayed after a resubscribe overlaps what was seen live", () => {
    let t = mergeEvents(EMPTY_TIMELINE, [ev(1), ev(2), ev(3)]);
    const again = mergeEvents(t, [ev(2), ev(3)]);
    expect(again).toBe(t); // nothing new: the same object, no re-render
    t = mergeEvents(t, [ev(3), ev(4), ev(5)]);
    expect(seqs(t)).toEqual([1, 2, 3, 4, 5]);
  });

  it("keeps the first copy of a seq", () => {
    const first = ev(1, "task.submitted", { model: "a" });
    const t = mergeEvents(mergeEvents(EMPTY_TIMELINE, [first]), [ev(1, "task.submitted", { model: "b" })]);
    expect(t.events[0]).toBe(first);
  });

  it("drops duplicates inside one batch", () => {
    const t = mergeEvents(EMPTY_TIMELINE, [ev(1), ev(1), ev(2), ev(2)]);
    expect(seqs(t)).toEqual([1, 2]);
  });

  it("sorts out-of-order arrivals and tracks the last seq without a gap", () => {
    let t = mergeEvents(EMPTY_TIMELINE, [ev(1), ev(2)]);
    t = mergeEvents(t, [ev(5)]); // e.g. seen live on `*` before the task's own history
    expect(seqs(t)).toEqual([1, 2, 5]);
    expect(t.contiguous).toBe(2); // resume after 2: 3 and 4 are missing
    expect(missingSeqs(t)).toEqual([3, 4]);
    t = mergeEvents(t, [ev(4), ev(3)]);
    expect(seqs(t)).toEqual([1, 2, 3, 4, 5]);
    expect(t.contiguous).toBe(5);
    expect(missingSeqs(t)).toEqual([]);
  });

  it("starts contiguous at 0 when seq 1 is missing", () => {
    const t = mergeEvents(EMPTY_TIMELINE, [ev(2), ev(3)]);
    expect(t.contiguous).toBe(0);
    expect(missingSeqs(t)).toEqual([1]);
  });

  it("marks the timeline ended on a terminal event or the end frame", () => {
    const t = mergeEvents(EMPTY_TIMELINE, [ev(1), ev(2, "task.succeeded", { summary: "ok" })]);
    expect(t.ended).toBe(true);
    const u = markEnded(mergeEvents(EMPTY_TIMELINE, [ev(1)]));
    expect(u.ended).toBe(true);
    expect(markEnded(u)).toBe(u);
  });

  it("returns the same timeline for an empty batch", () => {
    expect(mergeEvents(EMPTY_TIMELINE, [])).toBe(EMPTY_TIMELINE);
  });
});

describe("isTimelineEvent", () => {
  it("tells events from control frames", () => {
    expect(isTimelineEvent(ev(1))).toBe(true);
    expect(isTimelineEvent({ type: "subscribed", task_id: TASK })).toBe(false);
    expect(isTimelineEvent({ type: "end", task_id: TASK })).toBe(false);
    expect(isTimelineEvent({ type: "error", status: 404, title: "Not Found", task_id: TASK })).toBe(false);
    expect(isTimelineEvent({ type: "x", seq: 0, task_id: TASK })).toBe(false);
    expect(isTimelineEvent({ type: "x", seq: 1.5, task_id: TASK })).toBe(false);
    expect(isTimelineEvent(null)).toBe(false);
    expect(isTimelineEvent("task.progressed")).toBe(false);
  });
});

describe("stepsOfLatestAttempt", () => {
  it("counts the steps of the latest attempt only", () => {
    const events = [
      ev(1, "task.submitted"),
      ev(2, "task.started", { attempt: 1 }),
      ev(3, "task.progressed", { attempt: 1, step: 1 }),
      ev(4, "task.progressed", { attempt: 1, step: 2 }),
      ev(5, "task.started", { attempt: 2 }),
      ev(6, "task.progressed", { attempt: 2, step: 1 }),
    ];
    expect(stepsOfLatestAttempt(events)).toBe(1);
    expect(stepsOfLatestAttempt(events.slice(0, 4))).toBe(2);
    expect(stepsOfLatestAttempt([])).toBe(0);
  });
});

describe("describeEvent", () => {
  it("says what happened", () => {
    expect(describeEvent(ev(1, "task.submitted", { model: "claude-sonnet-4-5" }))).toMatchObject({
      label: "Submitted",
      detail: "model claude-sonnet-4-5",
    });
    expect(describeEvent(ev(2, "task.started", { attempt: 1, worker_id: "w-1" })).detail).toBe("attempt 1 on w-1");
    const progressed = describeEvent(
      ev(3, "task.progressed", {
        step: 2,
        message: "Ran list_files()",
        usage: { input_tokens: 1200, output_tokens: 40 },
        cost_usd: 0.0042,
      }),
    );
    expect(progressed.label).toBe("Step 2");
    expect(progressed.detail).toBe("Ran list_files() (1,200 in / 40 out tokens, $0.0042)");
    const failed = describeEvent(ev(4, "task.failed", { code: "budget_exceeded", budget: "max_turns", message: "Too many." }));
    expect(failed).toMatchObject({ label: "Failed", tone: "bad" });
    expect(failed.detail).toBe("budget_exceeded (max_turns): Too many.");
    expect(describeEvent(ev(5, "artifact.published", { name: "report.md", size: 2048 })).detail).toBe("report.md (2.0 KB)");
    expect(describeEvent(ev(6, "something.new")).label).toBe("something.new");
    expect(describeEvent(ev(7, "task.cancelled", { usage: { input_tokens: 0, output_tokens: 0 } })).detail).toBe("");
    expect(describeEvent(ev(8, "task.succeeded", { summary: "", usage: { input_tokens: 5, output_tokens: 1 } })).detail).toBe("5 in / 1 out tokens");
  });
});

describe("human input", () => {
  it("labels the question, the answer and the attempt that resumes after it", () => {
    const asked = describeEvent(ev(3, "task.input_requested", { attempt: 1, step: 1, question_id: "q", question: "Which region?" }));
    expect(asked).toMatchObject({ label: "Asked a question", detail: "Which region?", tone: "warn" });
    expect(describeEvent(ev(4, "task.input_provided", { question_id: "q", text: "eu-west-1" }))).toMatchObject({
      label: "Answered",
      detail: "eu-west-1",
    });
    const resumed = describeEvent(ev(5, "task.started", { attempt: 2, worker_id: "w-2", resumed: { question_id: "q", step: 1 } }));
    expect(resumed).toEqual({ label: "Resumed after your answer", detail: "attempt 2 on w-2", tone: "info" });
    expect(describeEvent(ev(2, "task.started", { attempt: 1, worker_id: "w-1", resumed: null })).label).toBe("Started");
  });

  it("counts the steps before the question in the attempt that resumes after it", () => {
    const events = [
      ev(1, "task.submitted"),
      ev(2, "task.started", { attempt: 1 }),
      ev(3, "task.progressed", { attempt: 1, step: 1 }),
      ev(4, "task.input_requested", { attempt: 1, step: 2, question_id: "q", question: "?" }),
    ];
    expect(stepsOfLatestAttempt(events)).toBe(2);
    const resumed = [...events, ev(5, "task.input_provided", { question_id: "q", text: "a" }), ev(6, "task.started", { attempt: 2, resumed: { question_id: "q", step: 2 } })];
    expect(stepsOfLatestAttempt(resumed)).toBe(2);
    expect(stepsOfLatestAttempt([...resumed, ev(7, "task.progressed", { attempt: 2, step: 3 })])).toBe(3);
  });

  it("shows the usage a question reported while the task waits", () => {
    const zero = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: 0 };
    const events = [
      ev(1, "task.progressed", { usage: { input_tokens: 100, output_tokens: 10 }, cost_usd: 0.001 }),
      ev(2, "task.input_requested", { usage: { input_tokens: 250, output_tokens: 30 }, cost_usd: 0.002 }),
    ];
    expect(liveUsage(zero, events)).toMatchObject({ input_tokens: 250, output_tokens: 30, cost_usd: 0.002 });
  });
});

describe("liveUsage", () => {
  const zero = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cost_usd: 0 };

  it("shows the latest step's usage while the task JSON has none yet", () => {
    const events = [
      ev(1, "task.progressed", { attempt: 1, step: 1, usage: { input_tokens: 110, output_tokens: 20 }, cost_usd: 0.0006 }),
      ev(2, "task.progressed", { attempt: 1, step: 2, usage: { input_tokens: 230, output_tokens: 40 }, cost_usd: 0.0013 }),
    ];
    expect(liveUsage(zero, events)).toEqual({ ...zero, input_tokens: 230, output_tokens: 40, cost_usd: 0.0013 });
  });

  it("keeps the task's own figures when they are larger (final usage) or there are no steps", () => {
    const final = { ...zero, input_tokens: 650, output_tokens: 100, cost_usd: 0.0034 };
    expect(liveUsage(final, [ev(1, "task.progressed", { usage: { input_tokens: 500, output_tokens: 80 }, cost_usd: 0.0027 })])).toEqual(final);
    expect(liveUsage(final, [])).toBe(final);
  });
});
