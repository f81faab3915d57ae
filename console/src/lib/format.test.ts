import { describe, expect, it } from "vitest";
import { budgetLine, elapsedSeconds, excerpt, formatBytes, formatDuration, formatInt, formatUsd, percentOf } from "./format";

describe("formatUsd", () => {
  it("shows cents from a dollar up", () => {
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatUsd(1)).toBe("$1.00");
    expect(formatUsd(12.345)).toBe("$12.35");
    expect(formatUsd(100)).toBe("$100.00");
  });

  it("keeps two significant digits below a dollar, so small costs are not $0.00", () => {
    expect(formatUsd(0.5)).toBe("$0.50");
    expect(formatUsd(0.123)).toBe("$0.12");
    expect(formatUsd(0.05)).toBe("$0.05");
    expect(formatUsd(0.0042)).toBe("$0.0042");
    expect(formatUsd(0.00123)).toBe("$0.0012");
    expect(formatUsd(0.01)).toBe("$0.01");
    expect(formatUsd(0.000012)).toBe("$0.000012");
    expect(formatUsd(0.0000001)).toBe("<$0.000001");
  });

  it("handles odd input", () => {
    expect(formatUsd(Number.NaN)).toBe("—");
    expect(formatUsd(-2)).toBe("-$2.00");
  });
});

describe("budgets", () => {
  it("says how much of a budget is used", () => {
    expect(budgetLine(0.25, 1, formatUsd)).toEqual({ text: "$0.25 of $1.00 (25%)", percent: 25, exhausted: false });
    expect(budgetLine(1200, 32000, formatInt)).toEqual({ text: "1,200 of 32,000 (4%)", percent: 4, exhausted: false });
  });

  it("says when there is no limit", () => {
    expect(budgetLine(0.0042, null, formatUsd)).toEqual({ text: "$0.0042 (no limit)", percent: null, exhausted: false });
    expect(budgetLine(3, undefined, formatInt).percent).toBeNull();
    expect(percentOf(1, 0)).toBeNull();
  });

  it("caps the bar at 100% and flags an exhausted budget", () => {
    expect(budgetLine(60, 50, formatInt)).toEqual({ text: "60 of 50 (100%)", percent: 100, exhausted: true });
    expect(budgetLine(50, 50, formatInt).exhausted).toBe(true);
    expect(percentOf(-1, 10)).toBe(0);
  });
});

describe("formatBytes", () => {
  it("uses binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1.0 KB");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(20 * 1024 * 1024)).toBe("20 MB");
    expect(formatBytes(-1)).toBe("—");
  });
});

describe("durations", () => {
  it("formats seconds", () => {
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(45.7)).toBe("45 s");
    expect(formatDuration(185)).toBe("3 min 05 s");
    expect(formatDuration(7380)).toBe("2 h 03 min");
    expect(formatDuration(Number.NaN)).toBe("—");
  });

  it("measures from start to end, or to now while running", () => {
    expect(elapsedSeconds("2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z")).toBe(90);
    expect(elapsedSeconds("2026-01-01T00:00:00Z", null, Date.parse("2026-01-01T00:00:10Z"))).toBe(10);
    expect(elapsedSeconds(null, null)).toBeNull();
  });
});

describe("excerpt", () => {
  it("takes the first non-empty line, cut", () => {
    expect(excerpt("\n  Write a report.\n/steps 3")).toBe("Write a report.");
    expect(excerpt("x".repeat(200), 10)).toBe(`${"x".repeat(9)}…`);
    expect(excerpt("")).toBe("");
  });
});
