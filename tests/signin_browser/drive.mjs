// Drives the sign-in page in headless Chromium, as a person would: open the app's authorization
// link, look at the page (light, dark, narrow), paste a wrong key, then the right one. Then the
// sign-ins page, at 380 px in light and dark: paste the key, look at the list.
//
// node drive.mjs '<json options>'   options: nodeModules, chromium, outDir, authorizeUrl,
//                                            wrongKey, goodKey, callbackOrigin, canaryUrl, sessionsUrl
//
// It prints one JSON object of observations on stdout; tests/test_signin_browser.py asserts on them.
import { mkdirSync } from "node:fs";
import { launchChromium, options, report, screenshots } from "../support/browser.mjs";

const STEP_LIMIT_MS = 30000; // every wait below is bounded by this
const observed = { views: {}, screenshots: [] };
const shot = screenshots("signin", observed);

// What a look at the page finds: the colours it ended up with (so the inline style was applied),
// the contrast of each kind of text against what is behind it, and where the controls are.
function look() {
  const rgb = (text) => (text.match(/[\d.]+/g) || []).slice(0, 4).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
  };
  // The first opaque background from the node up.
  const backdrop = (node) => {
    for (let at = node; at; at = at.parentElement) {
      const color = rgb(getComputedStyle(at).backgroundColor);
      if (color.length === 3 || color[3] > 0) return color;
    }
    return [255, 255, 255];
  };
  const contrast = {};
  const text = { heading: "h1", intro: "main > p:not(.error)", strong: "p strong", label: "label", field: "#key",
                 button: "button", note: ".small", error: ".error" };
  for (const [name, selector] of Object.entries(text)) {
    const node = document.querySelector(selector);
    if (node) contrast[name] = ratio(rgb(getComputedStyle(node).color), backdrop(node));
  }
  // A field's edge is what shows where to type: WCAG asks 3:1 against the card around it.
  const field = document.querySelector("#key");
  if (field) contrast.fieldEdge = ratio(rgb(getComputedStyle(field).borderTopColor), backdrop(field.parentElement));
  const box = (selector) => {
    const node = document.querySelector(selector);
    if (!node) return null;
    const r = node.getBoundingClientRect();
    const style = getComputedStyle(node);
    return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height,
             visible: style.visibility === "visible" && style.display !== "none" && r.width > 0 && r.height > 0 };
  };
  const label = document.querySelector("label[for=key]");
  return {
    url: location.href,
    title: document.title,
    heading: document.querySelector("h1")?.textContent,
    background: getComputedStyle(document.body).backgroundColor,
    scrollWidth: document.scrollingElement.scrollWidth,
    clientWidth: document.scrollingElement.clientWidth,
    contrast,
    controls: { key: box("#key"), submit: box("button[type=submit]") },
    labelled: !!label && label.control === field && label.textContent.trim().length > 0,
    error: document.querySelector("[role=alert]")?.textContent ?? null,
    keyValue: field ? field.value : null,
    invalid: field ? field.getAttribute("aria-invalid") : null,
    describedBy: field ? (field.getAttribute("aria-describedby") || "").split(/\s+/)
      .map((id) => document.getElementById(id)?.textContent.trim() ?? null) : [],
    focused: document.activeElement ? document.activeElement.id || document.activeElement.tagName.toLowerCase() : null,
  };
}

// A browser context that records every request and console message of its pages.
async function open(browser, name, contextOptions) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const seen = { requests: [], console: [], pageErrors: [] };
  observed.views[name] = seen;
  page.on("request", (request) => seen.requests.push(
    { url: request.url(), method: request.method(), type: request.resourceType() }));
  page.on("console", (message) => seen.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (err) => seen.pageErrors.push(String(err)));
  return { context, page, seen };
}

// Tab from the top of the page: the order focus moves in, and whether the focused control shows it.
async function tabOrder(page) {
  const order = [];
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => {
      const node = document.activeElement;
      const style = getComputedStyle(node);
      return { name: node.id || node.tagName.toLowerCase(), outline: `${style.outlineStyle} ${style.outlineWidth}` };
    }));
  }
  return order;
}

async function main() {
  mkdirSync(options.outDir, { recursive: true });
  const browser = await launchChromium();
  try {
    // Light, wide: the app's link leads here through /authorize.
    const light = await open(browser, "light", { viewport: { width: 900, height: 700 }, colorScheme: "light" });
    const first = await light.page.goto(options.authorizeUrl, { timeout: STEP_LIMIT_MS });
    light.seen.status = first.status();
    light.seen.look = await light.page.evaluate(look);
    await shot(light.page, "light");
    await light.page.locator("h1").click(); // focus starts from the top, on nothing in particular
    light.seen.tabOrder = await tabOrder(light.page);
    const signinUrl = light.page.url();

    // Dark: the system's scheme, no switch on the page.
    const dark = await open(browser, "dark", { viewport: { width: 900, height: 700 }, colorScheme: "dark" });
    dark.seen.status = (await dark.page.goto(signinUrl, { timeout: STEP_LIMIT_MS })).status();
    dark.seen.look = await dark.page.evaluate(look);
    await shot(dark.page, "dark");

    // Narrow: a phone, where the person most likely has the key on another screen.
    const narrow = await open(browser, "narrow", { viewport: { width: 380, height: 800 }, colorScheme: "light" });
    narrow.seen.status = (await narrow.page.goto(signinUrl, { timeout: STEP_LIMIT_MS })).status();
    narrow.seen.look = await narrow.page.evaluate(look);
    await shot(narrow.page, "narrow");

    // A wrong key: the same page comes back with the reason, and no redirect.
    await narrow.page.locator("#key").fill(options.wrongKey);
    const [refused] = await Promise.all([
      narrow.page.waitForResponse((r) => r.request().method() === "POST", { timeout: STEP_LIMIT_MS }),
      narrow.page.locator("button[type=submit]").click({ timeout: STEP_LIMIT_MS }),
    ]);
    await narrow.page.waitForLoadState("load", { timeout: STEP_LIMIT_MS });
    narrow.seen.refused = { status: refused.status(), look: await narrow.page.evaluate(look) };
    await shot(narrow.page, "narrow-wrong-key");
    await dark.page.locator("#key").fill(options.wrongKey);
    await Promise.all([
      dark.page.waitForResponse((r) => r.request().method() === "POST", { timeout: STEP_LIMIT_MS }),
      dark.page.locator("button[type=submit]").click({ timeout: STEP_LIMIT_MS }),
    ]);
    await dark.page.waitForLoadState("load", { timeout: STEP_LIMIT_MS });
    dark.seen.refused = { look: await dark.page.evaluate(look) };
    await shot(dark.page, "dark-wrong-key");

    // The right key, on the page that refused the wrong one: the browser lands at the app.
    await narrow.page.locator("#key").fill(options.goodKey);
    await Promise.all([
      narrow.page.waitForURL((url) => url.origin === options.callbackOrigin, { timeout: STEP_LIMIT_MS }),
      narrow.page.locator("button[type=submit]").click({ timeout: STEP_LIMIT_MS }),
    ]);
    narrow.seen.landed = narrow.page.url();

    // The sign-ins page on a phone, in each scheme: the key, then the list of apps with End buttons.
    for (const scheme of ["light", "dark"]) {
      const name = `sessions-${scheme}`;
      const view = await open(browser, name, { viewport: { width: 380, height: 800 }, colorScheme: scheme });
      view.seen.status = (await view.page.goto(options.sessionsUrl, { timeout: STEP_LIMIT_MS })).status();
      await view.page.locator("#key").fill(options.goodKey);
      const [listed] = await Promise.all([
        view.page.waitForResponse((r) => r.request().method() === "POST", { timeout: STEP_LIMIT_MS }),
        view.page.locator("button[type=submit]").click({ timeout: STEP_LIMIT_MS }),
      ]);
      await view.page.waitForLoadState("load", { timeout: STEP_LIMIT_MS });
      view.seen.listed = listed.status();
      view.seen.look = await view.page.evaluate(look);
      view.seen.list = await view.page.evaluate((key) => ({
        apps: [...document.querySelectorAll(".sessions li strong")].map((node) => node.textContent),
        buttons: [...document.querySelectorAll("button")].map((node) => {
          const r = node.getBoundingClientRect();
          return { text: node.textContent, left: r.left, right: r.right, height: r.height };
        }),
        keyShown: document.documentElement.outerHTML.includes(key),
      }), options.goodKey);
      await shot(view.page, name);
    }

    // The control: a page whose policy forbids its own inline style, to show this browser reports
    // a broken policy on the console where the checks above look for one.
    const canary = await open(browser, "canary", { viewport: { width: 600, height: 400 } });
    await canary.page.goto(options.canaryUrl, { timeout: STEP_LIMIT_MS });
    await canary.page.waitForFunction(() => document.readyState === "complete", null, { timeout: STEP_LIMIT_MS });
    canary.seen.background = await canary.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  } finally {
    await browser.close();
  }
}

report(main, observed);
