// Hash routing (#/tasks/<id>): the static host serves one index.html for /console/ and never
// sees the route, so S3/CloudFront need no SPA fallback rules.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { name: "tasks"; status: string }
  | { name: "new-task" }
  | { name: "task"; id: string }
  | { name: "webhooks" }
  | { name: "webhook"; id: string }
  | { name: "not-found"; path: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const [pathPart = "", queryPart = ""] = raw.split("?", 2);
  const path = pathPart.replace(/\/+$/, "") || "/";
  const query = new URLSearchParams(queryPart);
  const parts = path.split("/").filter((p) => p !== "").map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "tasks")) {
    return { name: "tasks", status: query.get("status") ?? "" };
  }
  if (parts[0] === "tasks" && parts.length === 2) {
    if (parts[1] === "new") return { name: "new-task" };
    return { name: "task", id: parts[1] ?? "" };
  }
  if (parts[0] === "webhooks" && parts.length === 1) return { name: "webhooks" };
  if (parts[0] === "webhooks" && parts.length === 2) return { name: "webhook", id: parts[1] ?? "" };
  return { name: "not-found", path };
}

export const href = {
  tasks: (status = "") => (status ? `#/tasks?status=${encodeURIComponent(status)}` : "#/tasks"),
  newTask: () => "#/tasks/new",
  task: (id: string) => `#/tasks/${encodeURIComponent(id)}`,
  webhooks: () => "#/webhooks",
  webhook: (id: string) => `#/webhooks/${encodeURIComponent(id)}`,
};

export function navigate(to: string, replace = false): void {
  if (replace) {
    history.replaceState(null, "", to);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = to.replace(/^#/, "");
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => { setRoute(parseRoute(location.hash)); };
    window.addEventListener("hashchange", onChange);
    return () => { window.removeEventListener("hashchange", onChange); };
  }, []);
  return route;
}
