import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The dashboard builds into dist/ (served by the API at /, hashed files under /assets/). `npm run dev -w @gpulab/web`
 * serves it with hot reload and forwards /v1 to the API at GPULAB_API_URL (default http://127.0.0.1:8080), so the
 * session cookie stays same-origin.
 */
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 800 },
  server: {
    proxy: { '/v1': { target: process.env.GPULAB_API_URL ?? 'http://127.0.0.1:8080', changeOrigin: false } },
  },
});
