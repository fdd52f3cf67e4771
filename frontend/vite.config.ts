import { defineConfig } from "vitest/config";

// Absolute asset URLs: the page lives at /organizations/{org}/activity/usage.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", target: "es2022" },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
