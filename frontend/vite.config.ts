import { defineConfig } from "vitest/config";

// Absolute asset URLs: the page lives at /organizations/{org}/activity/usage. Two entries: the
// page, and the API reference's starter (src/api-reference.ts), whose files the service finds
// in the manifest.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2022",
    manifest: true,
    rolldownOptions: {
      input: ["index.html", "src/api-reference.ts"],
      output: {
        // Files without an extension (LICENSE, NOTICE) are text, and served as such.
        assetFileNames: ({ names }) => `assets/[name]-[hash]${/\.\w+$/.test(names[0] ?? "") ? "[extname]" : ".txt"}`,
      },
    },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
