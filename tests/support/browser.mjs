// What the browser drivers (tests/player_host/drive.mjs, tests/signin_browser/drive.mjs) share:
// their options, the Node packages tests/support/browser.py installed, a headless Chromium, their
// screenshots, and the one JSON object of observations they print on stdout however the drive ends.
//
// A driver runs as `node drive.mjs '<json options>'`; every driver's options name nodeModules,
// chromium and outDir.
import { createRequire } from "node:module";
import { join } from "node:path";

export const options = JSON.parse(process.argv[2]);
// The packages live in the test cache, not beside the drivers: resolve them from there.
export const require = createRequire(join(options.nodeModules, "resolve-from-here.js"));

// Chromium as the tests run it: headless, quiet, nothing fetched on its own account.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

export function log(...args) {
  process.stderr.write(`[drive] ${args.join(" ")}\n`);
}

export function launchChromium(extraArgs = []) {
  const { chromium } = require("playwright-core");
  return chromium.launch({ executablePath: options.chromium, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

// A full-page screenshot as outDir/<prefix>-<name>.png, its path kept with the observations.
export function screenshots(prefix, observed) {
  return async (page, name) => {
    const path = join(options.outDir, `${prefix}-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    observed.screenshots.push(path);
    log("screenshot", path);
  };
}

// Run the drive and print what it observed: all of it, or as far as it got with the error.
export function report(main, observed) {
  main().then(
    () => { process.stdout.write(JSON.stringify(observed) + "\n"); process.exit(0); },
    (err) => {
      process.stderr.write(`[drive] failed: ${err && err.stack || err}\n`);
      process.stdout.write(JSON.stringify({ ...observed, error: String(err && err.message || err) }) + "\n");
      process.exit(1);
    },
  );
}
