import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { ConnectionIndicator } from "./components/common";
import { SessionContext, type Session } from "./context";
import { Api } from "./lib/api";
import { LiveConnection, type LiveStatus } from "./lib/live";
import { wsUrl } from "./lib/resume";
import { href, useRoute, type Route } from "./lib/router";
import { clearKey, loadKey, saveKey } from "./lib/session";
import { NewTaskPage } from "./pages/NewTaskPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { SignIn } from "./pages/SignIn";
import { TaskListPage } from "./pages/TaskListPage";
import { TaskPage } from "./pages/TaskPage";
import { WebhookPage } from "./pages/WebhookPage";
import { WebhooksPage } from "./pages/WebhooksPage";

export function App() {
  const [key, setKey] = useState<string | null>(() => loadKey());
  const [notice, setNotice] = useState<string | null>(null);

  const signOut = useCallback((message?: string) => {
    clearKey();
    setKey(null);
    setNotice(message ?? null);
  }, []);

  const signIn = useCallback((newKey: string) => {
    saveKey(newKey);
    setNotice(null);
    setKey(newKey);
  }, []);

  if (key === null) return <SignIn onSignIn={signIn} notice={notice} />;
  return <SignedIn key={key} apiKey={key} signOut={signOut} />;
}

function SignedIn({ apiKey, signOut }: { apiKey: string; signOut: (message?: string) => void }) {
  const route = useRoute();
  const [liveStatus, setLiveStatus] = useState<LiveStatus>({ state: "connecting", reason: null, retryAt: null });

  const api = useMemo(
    () => new Api(apiKey, () => { signOut("The API key was not accepted any more. Sign in again."); }),
    [apiKey, signOut],
  );
  const live = useMemo(
    () =>
      new LiveConnection({
        ticket: async () => (await api.createWsTicket()).ticket,
        url: (ticket) => wsUrl(location.origin, ticket),
        onStatus: setLiveStatus,
      }),
    [api],
  );

  useEffect(() => {
    live.start();
    const online = () => { live.retryNow(); };
    window.addEventListener("online", online);
    return () => {
      window.removeEventListener("online", online);
      live.stop();
    };
  }, [live]);

  const session: Session = useMemo(() => ({ api, live, liveStatus, signOut }), [api, live, liveStatus, signOut]);

  return (
    <SessionContext.Provider value={session}>
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="topbar">
        <a class="brand" href={href.tasks()}>
          Relay <span class="brand-sub">console</span>
        </a>
        <nav aria-label="Main">
          <ul>
            <li><a href={href.tasks()} aria-current={route.name === "tasks" || route.name === "task" ? "page" : undefined} data-testid="nav-tasks">Tasks</a></li>
            <li><a href={href.newTask()} aria-current={route.name === "new-task" ? "page" : undefined} data-testid="nav-new-task">New task</a></li>
            <li><a href={href.webhooks()} aria-current={route.name === "webhooks" || route.name === "webhook" ? "page" : undefined} data-testid="nav-webhooks">Webhooks</a></li>
          </ul>
        </nav>
        <div class="topbar-end">
          <ConnectionIndicator status={liveStatus} />
          <button type="button" class="button secondary small" onClick={() => { signOut(); }} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </SessionContext.Provider>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.name) {
    case "tasks":
      return <TaskListPage status={route.status} />;
    case "new-task":
      return <NewTaskPage />;
    case "task":
      return <TaskPage key={route.id} id={route.id} />;
    case "webhooks":
      return <WebhooksPage />;
    case "webhook":
      return <WebhookPage key={route.id} id={route.id} />;
    case "not-found":
      return <NotFoundPage />;
  }
}
