import { describe, expect, it } from "vitest";
import { href, isUuid, parseRoute } from "./router";

const ID = "0b5c6a1e-4a39-4d7c-9d0e-6f1f1c0a1b2c";

describe("parseRoute", () => {
  it("maps hashes to pages", () => {
    expect(parseRoute("")).toEqual({ name: "tasks", status: "" });
    expect(parseRoute("#/")).toEqual({ name: "tasks", status: "" });
    expect(parseRoute("#/tasks")).toEqual({ name: "tasks", status: "" });
    expect(parseRoute("#/tasks?status=running")).toEqual({ name: "tasks", status: "running" });
    expect(parseRoute("#/tasks/new")).toEqual({ name: "new-task" });
    expect(parseRoute(`#/tasks/${ID}`)).toEqual({ name: "task", id: ID });
    expect(parseRoute(`#/tasks/${ID}/`)).toEqual({ name: "task", id: ID });
    expect(parseRoute("#/webhooks")).toEqual({ name: "webhooks" });
    expect(parseRoute(`#/webhooks/${ID}`)).toEqual({ name: "webhook", id: ID });
    expect(parseRoute("#/nope/x/y")).toEqual({ name: "not-found", path: "/nope/x/y" });
  });

  it("round-trips the links it makes", () => {
    expect(parseRoute(href.task(ID))).toEqual({ name: "task", id: ID });
    expect(parseRoute(href.tasks("failed"))).toEqual({ name: "tasks", status: "failed" });
    expect(parseRoute(href.webhook(ID))).toEqual({ name: "webhook", id: ID });
  });

  it("tells task ids from anything else", () => {
    expect(isUuid(ID)).toBe(true);
    expect(isUuid(ID.toUpperCase())).toBe(true);
    expect(isUuid("../../etc")).toBe(false);
    expect(isUuid(`${ID}x`)).toBe(false);
  });
});
