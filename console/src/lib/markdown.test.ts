// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

describe("renderMarkdown", () => {
  it("renders Markdown", () => {
    const html = renderMarkdown("# Report\n\nSome *text* and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |");
    expect(html).toContain("<h1>Report</h1>");
    expect(html).toContain("<em>text</em>");
    expect(html).toContain("<code>code</code>");
    expect(html).toContain("<table>");
  });

  it("removes scripts, event handlers, javascript: links, styles and frames", () => {
    const html = renderMarkdown(
      [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(2)">',
        "[click](javascript:alert(3))",
        '<a href="javascript:alert(4)">x</a>',
        '<p style="position:fixed">styled</p>',
        '<iframe src="https://evil.example"></iframe>',
        '<form action="https://evil.example"><input name="k"></form>',
        "<svg><script>alert(5)</script></svg>",
      ].join("\n\n"),
    );
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/onerror/i);
    expect(html).not.toMatch(/javascript:/i);
    expect(html).not.toMatch(/style=/i);
    expect(html).not.toMatch(/<iframe/i);
    expect(html).not.toMatch(/<form|<input/i);
    expect(html).not.toMatch(/alert\(5\)/);
  });

  it("opens links in a new tab without an opener", () => {
    const html = renderMarkdown("[docs](https://example.com/docs)");
    expect(html).toContain('href="https://example.com/docs"');
    expect(html).toContain('target="_blank"');
    expect(html).toContain('rel="noopener noreferrer nofollow"');
  });
});
