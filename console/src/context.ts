import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./lib/api";
import type { LiveConnection, LiveStatus } from "./lib/live";

export interface Session {
  api: Api;
  live: LiveConnection;
  liveStatus: LiveStatus;
  signOut: (message?: string) => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession outside a signed-in console");
  return session;
}
