// Builds the console into static files for dlabd. DLAB_CONSOLE_OUT (set by CMake) is where they
// go: build/share/dlab/console, which dlabd serves at / by default.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: process.env.DLAB_CONSOLE_OUT ?? "../build/share/dlab/console",
    emptyOutDir: true,
    target: "es2020",
    chunkSizeWarningLimit: 300,
  },
});
