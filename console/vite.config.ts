import { defineConfig } from "vitest/config";

// Where `npm run dev` and `npm run preview` send /v1 (HTTP and the WebSocket): a local stack's
// gateway. Override for a stack on other ports: RELAY_API_URL=http://127.0.0.1:18000 npm run dev
const apiUrl = process.env.RELAY_API_URL ?? "http://127.0.0.1:8000";

// The storage origin that presigned download URLs point to (moto server locally). Only used by
// `npm run preview`, which serves the production build with the same strict CSP as production,
// so a CSP violation shows up before deploying.
const storageOrigin = process.env.RELAY_STORAGE_ORIGIN ?? "http://127.0.0.1:5055";

const proxy = {
  "/v1": { target: apiUrl, ws: true, changeOrigin: false },
};

const csp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  `img-src 'self' data: blob: ${storageOrigin}`,
  `connect-src 'self' ${storageOrigin}`,
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export default defineConfig({
  base: "/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // Keep every asset a file under dist/assets/: nothing inlined as data: URLs in CSS or JS.
    assetsInlineLimit: 0,
  },
  server: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
  preview: {
    host: "127.0.0.1",
    port: 4173,
    strictPort: true,
    proxy,
    headers: { "Content-Security-Policy": csp },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
