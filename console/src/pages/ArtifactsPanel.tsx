import { useEffect, useState } from "preact/hooks";
import { Empty, ErrorBox, Loading } from "../components/common";
import { useSession } from "../context";
import { useLoad } from "../hooks";
import { formatBytes, formatTime } from "../lib/format";
import { MAX_TEXT_PREVIEW_BYTES, type PreviewKind, previewKind } from "../lib/preview";
import type { Artifact, ArtifactDownload } from "../lib/types";

/** A presigned URL this close to its expiry is fetched again before use. */
const EXPIRY_MARGIN_MS = 5_000;

function expired(download: ArtifactDownload, now = Date.now()): boolean {
  const at = Date.parse(download.download_url_expires_at);
  return !Number.isNaN(at) && at - EXPIRY_MARGIN_MS <= now;
}

export function ArtifactsPanel({ taskId, version }: { taskId: string; version: number }) {
  const { api } = useSession();
  const list = useLoad((signal) => api.listArtifacts(taskId, signal), `${taskId}:${version}`);
  const items = list.data?.items ?? null;
  return (
    <section class="card" aria-labelledby="artifacts-title" data-testid="artifacts">
      <div class="card-head">
        <h2 id="artifacts-title">Artifacts</h2>
        {items !== null && <span class="muted">{items.length}</span>}
      </div>
      {items === null ? (
        list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : <Loading label="Loading artifacts…" />
      ) : items.length === 0 ? (
        <Empty testId="artifacts-empty"><p>No artifacts yet. Files the agent writes appear here.</p></Empty>
      ) : (
        <ul class="artifact-list">
          {items.map((artifact) => <ArtifactItem key={artifact.id} taskId={taskId} artifact={artifact} />)}
        </ul>
      )}
    </section>
  );
}

function ArtifactItem({ taskId, artifact }: { taskId: string; artifact: Artifact }) {
  const { api } = useSession();
  const detail = useLoad((signal) => api.getArtifact(taskId, artifact.id, signal), artifact.id);
  const [open, setOpen] = useState(false);
  const kind = previewKind(artifact);
  const download = detail.data;
  const previewId = `preview-${artifact.id}`;

  /** A fresh presigned URL when the one we have has (nearly) expired. */
  const fresh = async (): Promise<ArtifactDownload | null> => {
    if (download !== null && !expired(download)) return download;
    try {
      const next = await api.getArtifact(taskId, artifact.id);
      detail.setData(() => next);
      return next;
    } catch {
      return null;
    }
  };

  const onDownload = (event: MouseEvent) => {
    if (download === null || !expired(download)) return; // the link is good as it is
    event.preventDefault();
    void fresh().then((next) => {
      if (next === null) return;
      const a = document.createElement("a");
      a.href = next.download_url;
      a.download = artifact.name;
      a.rel = "noopener";
      document.body.append(a);
      a.click();
      a.remove();
    });
  };

  return (
    <li class="artifact" data-testid="artifact" data-artifact-id={artifact.id} data-name={artifact.name}>
      <div class="artifact-head">
        <div class="artifact-name">
          <strong class="break">{artifact.name}</strong>
          <span class="muted">
            {artifact.content_type} · {formatBytes(artifact.size)} · {formatTime(artifact.created_at)}
          </span>
          <span class="muted mono break" title="sha256">sha256 {artifact.sha256.slice(0, 16)}…</span>
        </div>
        <div class="artifact-actions">
          {download !== null ? (
            <a
              class="button secondary small"
              href={download.download_url}
              download={artifact.name}
              rel="noopener"
              onClick={onDownload}
              data-testid="artifact-download"
            >
              Download<span class="visually-hidden"> {artifact.name}</span>
            </a>
          ) : detail.error ? (
            <button type="button" class="button secondary small" onClick={detail.reload} data-testid="artifact-download-retry">
              Retry link
            </button>
          ) : (
            <span class="muted">Preparing link…</span>
          )}
          {kind !== "none" && (
            <button
              type="button"
              class="button secondary small"
              aria-expanded={open}
              aria-controls={previewId}
              onClick={() => { setOpen((o) => !o); }}
              data-testid="artifact-preview-toggle"
            >
              {open ? "Hide preview" : "Preview"}<span class="visually-hidden"> {artifact.name}</span>
            </button>
          )}
        </div>
      </div>
      {detail.error && <p class="error-inline" role="alert">Download link unavailable: {detail.error.summary}</p>}
      {open && (
        <div id={previewId} class="preview" data-testid="artifact-preview" data-kind={kind}>
          {download === null ? (
            detail.error ? <PreviewUnavailable download={null} name={artifact.name} /> : <Loading label="Preparing the preview…" />
          ) : (
            <Preview kind={kind} artifact={artifact} download={download} fresh={fresh} />
          )}
        </div>
      )}
    </li>
  );
}

function PreviewUnavailable({ download, name, reason }: { download: ArtifactDownload | null; name: string; reason?: string }) {
  return (
    <p class="muted" data-testid="artifact-preview-unavailable">
      {reason ?? "Preview unavailable."}{" "}
      {download !== null && (
        <a href={download.download_url} download={name} rel="noopener">Download {name}</a>
      )}
    </p>
  );
}

type TextState =
  | { state: "loading" }
  | { state: "ready"; text: string; html: string | null }
  | { state: "failed" };

function Preview({
  kind,
  artifact,
  download,
  fresh,
}: {
  kind: PreviewKind;
  artifact: Artifact;
  download: ArtifactDownload;
  fresh: () => Promise<ArtifactDownload | null>;
}) {
  const [imageFailed, setImageFailed] = useState(false);
  const [text, setText] = useState<TextState>({ state: "loading" });
  const tooBig = artifact.size > MAX_TEXT_PREVIEW_BYTES;
  const textual = kind === "text" || kind === "markdown";

  useEffect(() => {
    if (!textual || tooBig) return undefined;
    const controller = new AbortController();
    const load = async () => {
      const current = await fresh();
      if (current === null) throw new Error("no download URL");
      // Cross-origin GET to the storage origin: no credentials, no API key.
      const response = await fetch(current.download_url, { signal: controller.signal, credentials: "omit", mode: "cors" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.text();
      let html: string | null = null;
      if (kind === "markdown") {
        const { renderMarkdown } = await import("../lib/markdown");
        html = renderMarkdown(body);
      }
      return { body, html };
    };
    load().then(
      ({ body, html }) => { if (!controller.signal.aborted) setText({ state: "ready", text: body, html }); },
      () => { if (!controller.signal.aborted) setText({ state: "failed" }); },
    );
    return () => { controller.abort(); };
    // fetched once per opening; `fresh` changes identity on every render
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [artifact.id, kind, textual, tooBig]);

  if (kind === "image") {
    return imageFailed ? (
      <PreviewUnavailable download={download} name={artifact.name} />
    ) : (
      <img
        class="preview-image"
        src={download.download_url}
        alt={artifact.name}
        loading="lazy"
        onError={() => { setImageFailed(true); }}
        data-testid="artifact-preview-image"
      />
    );
  }
  if (!textual) return <PreviewUnavailable download={download} name={artifact.name} reason="No preview for this kind of file." />;
  if (tooBig) {
    return <PreviewUnavailable download={download} name={artifact.name} reason={`Too large to preview (${formatBytes(artifact.size)}).`} />;
  }
  if (text.state === "loading") return <Loading label="Loading the preview…" />;
  if (text.state === "failed") return <PreviewUnavailable download={download} name={artifact.name} />;
  if (text.html !== null) {
    // Sanitized by DOMPurify in renderMarkdown (lib/markdown.ts).
    return <div class="markdown" data-testid="artifact-preview-markdown" dangerouslySetInnerHTML={{ __html: text.html }} />;
  }
  return <pre class="preview-text" data-testid="artifact-preview-text">{text.text}</pre>;
}
