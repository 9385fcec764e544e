import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The operator console: built into console/dist and served by the server at /console.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed file names: the server serves them as immutable; index.html is never cached.
    assetsDir: "assets",
    target: "es2022",
    reportCompressedSize: false,
  },
  // No network at run time: nothing is loaded from elsewhere.
  server: { fs: { allow: [fileURLToPath(new URL("..", import.meta.url))] } },
});
