import { describe, expect, it } from "vitest";
import { isTerminal, laterStatus, recordBehind, statusAfterEvent, statusFromEvents } from "./status";

describe("statusAfterEvent", () => {
  it("follows the lifecycle", () => {
    expect(statusAfterEvent("queued", "task.submitted")).toBe("queued");
    expect(statusAfterEvent("queued", "task.started")).toBe("running");
    expect(statusAfterEvent("running", "task.progressed")).toBe("running");
    expect(statusAfterEvent("running", "task.cancel_requested")).toBe("cancelling");
    expect(statusAfterEvent("running", "task.succeeded")).toBe("succeeded");
    expect(statusAfterEvent("running", "task.failed")).toBe("failed");
    expect(statusAfterEvent("cancelling", "task.cancelled")).toBe("cancelled");
    expect(statusAfterEvent("queued", "task.cancelled")).toBe("cancelled");
    expect(statusAfterEvent("running", "task.input_requested")).toBe("waiting_for_input");
    expect(statusAfterEvent("waiting_for_input", "task.input_provided")).toBe("running");
  });

  it("never moves backwards", () => {
    expect(statusAfterEvent("succeeded", "task.progressed")).toBe("succeeded");
    expect(statusAfterEvent("failed", "task.started")).toBe("failed");
    expect(statusAfterEvent("cancelled", "task.cancel_requested")).toBe("cancelled");
    expect(statusAfterEvent("succeeded", "task.failed")).toBe("succeeded");
    expect(statusAfterEvent("cancelling", "task.progressed")).toBe("cancelling");
    expect(statusAfterEvent("cancelling", "task.started")).toBe("cancelling");
  });

  it("keeps the status on events that do not change it", () => {
    expect(statusAfterEvent("running", "artifact.published")).toBe("running");
    expect(statusAfterEvent("queued", "something.new")).toBe("queued");
  });

  it("knows the terminal statuses", () => {
    expect(isTerminal("succeeded")).toBe(true);
    expect(isTerminal("cancelling")).toBe(false);
  });
});

describe("laterStatus", () => {
  it("takes the fetched status unless it is behind what events said", () => {
    expect(laterStatus("queued", "running")).toBe("running");
    expect(laterStatus("succeeded", "running")).toBe("succeeded"); // the record lags the timeline
    expect(laterStatus("cancelling", "running")).toBe("cancelling");
    expect(laterStatus("running", "waiting_for_input")).toBe("waiting_for_input");
    expect(laterStatus("waiting_for_input", "running")).toBe("running");
    expect(laterStatus("cancelling", "cancelled")).toBe("cancelled");
    expect(laterStatus("succeeded", "succeeded")).toBe("succeeded");
  });
});

describe("recordBehind", () => {
  it("says when a fetched record has not yet caught up with a finish or a question", () => {
    expect(recordBehind("succeeded", "running")).toBe(true);
    expect(recordBehind("succeeded", "succeeded")).toBe(false);
    expect(recordBehind("waiting_for_input", "running")).toBe(true);
    expect(recordBehind("waiting_for_input", "queued")).toBe(true);
    expect(recordBehind("waiting_for_input", "waiting_for_input")).toBe(false);
    expect(recordBehind("waiting_for_input", "cancelling")).toBe(false);
    expect(recordBehind("running", "queued")).toBe(false); // no reason to read again
  });
});

describe("statusFromEvents", () => {
  it("folds a timeline into a status", () => {
    expect(statusFromEvents([])).toBe("queued");
    expect(statusFromEvents([{ type: "task.submitted" }, { type: "task.started" }, { type: "task.progressed" }])).toBe("running");
    expect(
      statusFromEvents([{ type: "task.submitted" }, { type: "task.started" }, { type: "task.cancel_requested" }, { type: "task.progressed" }]),
    ).toBe("cancelling");
    expect(statusFromEvents([{ type: "task.submitted" }, { type: "task.failed" }, { type: "artifact.published" }])).toBe("failed");
  });
});
