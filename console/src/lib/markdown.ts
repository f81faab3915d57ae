// Markdown to SAFE HTML: marked renders, DOMPurify removes anything active (scripts, event
// handler attributes, javascript: URLs, forms, iframes...). Loaded on demand, so the main bundle
// stays small for people who never preview a Markdown artifact.
import DOMPurify from "dompurify";
import { Marked } from "marked";

const marked = new Marked({ gfm: true, breaks: false, async: false });

let hooked = false;

function hookLinks(): void {
  if (hooked) return;
  hooked = true;
  // Links open in a new tab without handing this page to the target.
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
}

export function renderMarkdown(source: string): string {
  hookLinks();
  const html = marked.parse(source, { async: false });
  return DOMPurify.sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
    FORBID_ATTR: ["style"],
  });
}
