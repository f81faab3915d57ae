// Which inline preview an artifact gets.
import type { Artifact } from "./types";

export type PreviewKind = "image" | "markdown" | "text" | "none";

/** Largest text or Markdown artifact fetched for an inline preview. */
export const MAX_TEXT_PREVIEW_BYTES = 1024 * 1024;

const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/svg+xml", "image/bmp"]);
const TEXT_TYPES = new Set([
  "application/json",
  "application/xml",
  "application/x-yaml",
  "application/yaml",
  "application/toml",
  "application/x-sh",
  "application/javascript",
  "application/x-python",
  "application/sql",
]);
const TEXT_EXTENSIONS = /\.(txt|log|csv|tsv|json|jsonl|ya?ml|toml|xml|ini|cfg|conf|py|js|ts|tsx|jsx|sh|sql|go|rs|java|c|h|cpp|css|html?)$/i;
const MARKDOWN_EXTENSIONS = /\.(md|markdown|mdown|mkd)$/i;

export function previewKind(artifact: Pick<Artifact, "content_type" | "name">): PreviewKind {
  const type = (artifact.content_type.split(";")[0] ?? "").trim().toLowerCase();
  if (IMAGE_TYPES.has(type)) return "image";
  if (type === "text/markdown" || type === "text/x-markdown" || MARKDOWN_EXTENSIONS.test(artifact.name)) {
    return "markdown";
  }
  if (type.startsWith("text/") || TEXT_TYPES.has(type) || type.endsWith("+json") || TEXT_EXTENSIONS.test(artifact.name)) {
    return "text";
  }
  return "none";
}
