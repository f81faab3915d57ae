import { describe, expect, it } from "vitest";
import { previewKind } from "./preview";

describe("previewKind", () => {
  it("previews images, Markdown and text, and nothing else", () => {
    expect(previewKind({ name: "chart.png", content_type: "image/png" })).toBe("image");
    expect(previewKind({ name: "report.md", content_type: "text/markdown" })).toBe("markdown");
    expect(previewKind({ name: "report.md", content_type: "application/octet-stream" })).toBe("markdown");
    expect(previewKind({ name: "notes.txt", content_type: "text/plain; charset=utf-8" })).toBe("text");
    expect(previewKind({ name: "data.json", content_type: "application/json" })).toBe("text");
    expect(previewKind({ name: "x", content_type: "application/vnd.api+json" })).toBe("text");
    expect(previewKind({ name: "main.py", content_type: "application/octet-stream" })).toBe("text");
    expect(previewKind({ name: "a.zip", content_type: "application/zip" })).toBe("none");
    expect(previewKind({ name: "a.bin", content_type: "application/octet-stream" })).toBe("none");
  });
});
