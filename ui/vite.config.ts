/// <reference types="vitest" />
import { defineConfig } from 'vite';

// The Tauri shell serves the built files from ui/dist (custom protocol), so
// paths are relative and nothing is loaded from the network.
export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  server: { port: 5173, strictPort: true },
  preview: { port: 4173 },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    // Component tests ask for jsdom with a `@vitest-environment jsdom` comment.
    environment: 'node',
    // Let styles/contrast.test.ts read the style sheets (`?raw`).
    css: { include: [/src\/styles\/.+\.css/] },
  },
});
