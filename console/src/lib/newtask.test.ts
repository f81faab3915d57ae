import { describe, expect, it } from "vitest";
import { buildNewTask, keyForAttempt, newIdempotencyKey, type NewTaskForm } from "./newtask";

const form = (over: Partial<NewTaskForm> = {}): NewTaskForm => ({
  prompt: "Write a report.\n/steps 3",
  model: "",
  maxTurns: "",
  maxOutputTokens: "",
  maxWallSeconds: "",
  maxCostUsd: "",
  maxWaitSeconds: "",
  metadata: [],
  ...over,
});

describe("buildNewTask", () => {
  it("sends only what was filled in", () => {
    expect(buildNewTask(form())).toEqual({ ok: true, body: { prompt: "Write a report.\n/steps 3" } });
  });

  it("includes model, limits and metadata", () => {
    const result = buildNewTask(
      form({
        model: " claude-haiku-4-5 ",
        maxTurns: "10",
        maxCostUsd: "0.5",
        maxWallSeconds: "90.5",
        maxWaitSeconds: "600",
        metadata: [{ key: "team", value: "docs" }, { key: "", value: "" }],
      }),
    );
    expect(result).toEqual({
      ok: true,
      body: {
        prompt: "Write a report.\n/steps 3",
        model: "claude-haiku-4-5",
        limits: { max_turns: 10, max_cost_usd: 0.5, max_wall_seconds: 90.5, max_wait_seconds: 600 },
        metadata: { team: "docs" },
      },
    });
  });

  it("points at the fields that cannot be sent", () => {
    const result = buildNewTask(
      form({
        prompt: "  ",
        maxTurns: "2.5",
        maxOutputTokens: "0",
        maxWaitSeconds: "soon",
        metadata: [{ key: "", value: "orphan" }, { key: "a", value: "1" }, { key: "a", value: "2" }],
      }),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(Object.keys(result.errors).sort()).toEqual(["limits.max_output_tokens", "limits.max_turns", "limits.max_wait_seconds", "metadata", "prompt"]);
    expect(result.errors.metadata).toHaveLength(2);
  });
});

describe("keyForAttempt", () => {
  it("reuses the key for a retry of the same body and makes a new one otherwise", () => {
    let n = 0;
    const make = () => `k${++n}`;
    const first = keyForAttempt(null, '{"prompt":"a"}', make);
    expect(first.key).toBe("k1");
    expect(keyForAttempt(first, '{"prompt":"a"}', make).key).toBe("k1");
    expect(keyForAttempt(first, '{"prompt":"b"}', make).key).toBe("k2");
  });

  it("makes distinct random keys", () => {
    expect(newIdempotencyKey()).not.toBe(newIdempotencyKey());
    expect(newIdempotencyKey()).toMatch(/^console-/);
  });
});
