import { describe, expect, it } from "vitest";
import { ApiError, fieldErrors, networkError, parseRetryAfter, problemFromResponse } from "./problem";

const headers = (h: Record<string, string>) => new Headers(h);

describe("problemFromResponse", () => {
  it("reads RFC 9457 problem details with field errors", () => {
    const body = JSON.stringify({
      type: "about:blank",
      title: "Unprocessable Content",
      status: 422,
      detail: "The request did not match the expected shape; see errors.",
      errors: [
        { location: "body.limits.max_turns", message: "max_turns must be between 1 and 200", type: "limit_out_of_range" },
        { location: "body.model", message: "unknown model; allowed: a, b" },
      ],
    });
    const error = problemFromResponse(422, body, headers({ "content-type": "application/problem+json" }));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.title).toBe("Unprocessable Content");
    expect(error.detail).toBe("The request did not match the expected shape; see errors.");
    expect(error.errors).toEqual([
      { location: "body.limits.max_turns", message: "max_turns must be between 1 and 200" },
      { location: "body.model", message: "unknown model; allowed: a, b" },
    ]);
    expect(error.summary).toBe("The request did not match the expected shape; see errors.");
  });

  it("reads Retry-After on a 429", () => {
    const body = JSON.stringify({ title: "Too Many Requests", status: 429, detail: "Request rate limit reached." });
    const error = problemFromResponse(429, body, headers({ "content-type": "application/problem+json", "retry-after": "3" }));
    expect(error.retryAfter).toBe(3);
    expect(error.summary).toBe("Request rate limit reached. (try again in 3 s)");
  });

  it("survives an answer that is not JSON (a proxy's HTML page)", () => {
    const error = problemFromResponse(502, "<html>Bad gateway</html>", headers({ "content-type": "text/html" }));
    expect(error.title).toBe("Bad Gateway");
    expect(error.detail).toBeNull();
    expect(error.errors).toEqual([]);
    const broken = problemFromResponse(500, "{not json", headers({ "content-type": "application/json" }));
    expect(broken.title).toBe("Internal Server Error");
    const empty = problemFromResponse(418, "", headers({}));
    expect(empty.title).toBe("HTTP 418");
  });

  it("reads FastAPI's own validation shape (detail as a list of errors)", () => {
    const body = JSON.stringify({ detail: [{ loc: ["body", "prompt"], msg: "Field required", type: "missing" }] });
    const error = problemFromResponse(422, body, headers({ "content-type": "application/json" }));
    expect(error.detail).toBeNull();
    expect(error.errors).toEqual([{ location: "body.prompt", message: "Field required" }]);
  });

  it("ignores malformed entries in errors[]", () => {
    const body = JSON.stringify({ title: "x", status: 422, errors: [null, 3, { location: "body.a" }, { message: "kept" }] });
    const error = problemFromResponse(422, body, headers({ "content-type": "application/problem+json" }));
    expect(error.errors).toEqual([{ location: "", message: "kept" }]);
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("12")).toBe(12);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("Thu, 01 Jan 2025 00:00:30 GMT", now)).toBe(0);
  });
});

describe("fieldErrors", () => {
  const fields = ["prompt", "model", "metadata", "limits", "limits.max_turns", "limits.max_cost_usd"];

  it("puts each error next to its field", () => {
    const spread = fieldErrors(
      [
        { location: "body.limits.max_turns", message: "too many" },
        { location: "body.prompt", message: "required" },
        { location: "body.prompt", message: "too long" },
      ],
      fields,
    );
    expect(spread.byField).toEqual({ "limits.max_turns": ["too many"], prompt: ["required", "too long"] });
    expect(spread.other).toEqual([]);
  });

  it("falls back to the closest known parent, else keeps the error apart", () => {
    const spread = fieldErrors(
      [
        { location: "body.metadata.some key", message: "too long" },
        { location: "body.limits.max_wall_seconds", message: "out of range" },
        { location: "body", message: "not JSON" },
        { location: "", message: "no location" },
        { location: "query.status", message: "unknown status" },
      ],
      fields,
    );
    expect(spread.byField).toEqual({ metadata: ["too long"], limits: ["out of range"] });
    expect(spread.other).toEqual(["body: not JSON", "no location", "query.status: unknown status"]);
  });
});

describe("networkError", () => {
  it("is status 0 and says the API could not be reached", () => {
    const error = networkError(new TypeError("Failed to fetch"));
    expect(error.status).toBe(0);
    expect(error.summary).toBe("Could not reach the API: Failed to fetch");
  });
});
