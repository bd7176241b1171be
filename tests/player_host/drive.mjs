// Drives the player in headless Chromium through the official AppBridge, against our server.
//
// node drive.mjs '<json options>'   options: nodeModules, serverUrl, hostDir, outDir, chromium
//
// The driver is the "model": it makes the first tool call (generate_music) and then only watches.
// Every later tool call comes from the view, through the host's bridge. It prints one JSON
// object of observations on stdout; tests/test_player_browser.py asserts on them.
import { createServer } from "node:http";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, options, report, require, screenshots } from "../support/browser.mjs";

const esbuild = require("esbuild");
const { Client, StreamableHTTPClientTransport } = require("@modelcontextprotocol/client");

const UI = "io.modelcontextprotocol/ui";
const MIME = "text/html;profile=mcp-app";
const STEP_LIMIT_MS = 45000; // every wait below is bounded by this
const EXTEND_AT = 12;

const observed = { calls: [], hostLog: [], requests: [], console: [], screenshots: [] };
const shot = screenshots("player", observed);

async function main() {
  mkdirSync(options.outDir, { recursive: true });
  const client = new Client(
    { name: "suno-mcp player test host", version: "1.0.0" },
    { capabilities: { extensions: { [UI]: { mimeTypes: [MIME] } } } },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(options.serverUrl)));

  const tools = (await client.listTools()).tools;
  const generate = tools.find((t) => t.name === "generate_music");
  const uri = generate._meta.ui.resourceUri;
  const resource = (await client.readResource({ uri })).contents[0];
  observed.resource = { uri, mimeType: resource.mimeType, csp: resource._meta.ui.csp };

  const bundle = await esbuild.build({
    entryPoints: [join(options.hostDir, "host.js")],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    nodePaths: [options.nodeModules],
    logLevel: "silent",
  });
  const files = {
    "/host.html": { body: readFileSync(join(options.hostDir, "host.html")), type: "text/html" },
    "/host.bundle.js": { body: Buffer.from(bundle.outputFiles[0].contents), type: "text/javascript" },
  };

  // The host page is served from loopback, like the sandbox's media: Chromium lets a page reach
  // loopback addresses only from loopback (or a secure context that asked for permission).
  const server = createServer((request, response) => {
    const path = new URL(request.url, "http://x").pathname;
    const file = files[path];
    if (!file && path === "/favicon.ico") { response.writeHead(204); response.end(); return; }
    response.writeHead(file ? 200 : 404, { "content-type": file ? file.type : "text/plain" });
    response.end(file ? file.body : "");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `http://127.0.0.1:${server.address().port}`;
  observed.hostOrigin = host;

  const browser = await launchChromium(["--autoplay-policy=no-user-gesture-required"]);
  try {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 }, colorScheme: "light" });
    const page = await context.newPage();
    page.on("request", (request) => observed.requests.push(request.url()));
    page.on("console", (message) => observed.console.push(`${message.type()}: ${message.text()}`));
    await page.exposeFunction("mcpCallTool", async (params) => {
      observed.calls.push({ name: params.name, arguments: params.arguments, at: Date.now() });
      return await client.callTool(params);
    });
    await page.exposeFunction("hostRecord", (kind, params) => {
      observed.hostLog.push({ kind, params, at: Date.now() });
    });
    await page.goto(`${host}/host.html`);

    // The "model" asks for a song; the tool returns as soon as previews play.
    const args = { description: "a lo-fi song about rain on the window", wait_seconds: 20 };
    const first = await client.callTool({ name: "generate_music", arguments: args });
    observed.first = { status: first.structuredContent.status, taskId: first.structuredContent.task_id };
    const started = await page.evaluate((input) => window.startHost(input), {
      html: resource.text, csp: resource._meta.ui.csp, toolName: "generate_music",
      toolArguments: args, toolResult: first, theme: "light",
    });
    observed.policy = started.policy;

    const frame = await (await page.$("#app")).contentFrame();
    const clips = frame.locator("article.clip");
    // Both previews: the second clip may start streaming a moment after the first.
    await frame.waitForFunction(() => {
      const all = [...document.querySelectorAll("article.clip")];
      return all.length === 2 && all.every((a) => a.dataset.status === "streaming");
    }, null, { timeout: STEP_LIMIT_MS });
    observed.streaming = await frame.evaluate(() => [...document.querySelectorAll("article.clip")].map((a) => ({
      id: a.dataset.clipId,
      status: a.dataset.status,
      previewMarked: !a.querySelector(".badge.preview").hidden,
      title: a.querySelector("h2").textContent,
      audioSrc: a.querySelector("audio").src,
    })));
    await shot(page, "streaming-light-wide");

    // The view follows the task to the end with get_task_status, the model does nothing.
    await frame.waitForFunction(() => {
      const all = [...document.querySelectorAll("article.clip")];
      return all.length >= 2 && all.every((a) => a.dataset.status === "complete");
    }, null, { timeout: STEP_LIMIT_MS });
    await frame.waitForFunction(() => [...document.querySelectorAll("article.clip img.cover")]
      .filter((img) => img.complete && img.naturalWidth > 0).length >= 2, null, { timeout: STEP_LIMIT_MS });
    observed.complete = await frame.evaluate(() => [...document.querySelectorAll("article.clip")].map((a) => {
      const img = a.querySelector("img.cover");
      return {
        id: a.dataset.clipId,
        status: a.dataset.status,
        previewMarked: !a.querySelector(".badge.preview").hidden,
        duration: a.querySelector(".duration").textContent,
        audioSrc: a.querySelector("audio").src,
        coverLoaded: !!img && img.complete && img.naturalWidth > 0,
        live: document.getElementById("live").textContent,
      };
    }));

    // Play the first clip: the media element must report playing with its time moving on.
    const firstClip = clips.nth(0);
    await firstClip.locator("button.play").click();
    await frame.waitForFunction(() => {
      const audio = document.querySelector("article.clip audio");
      return !audio.paused && audio.currentTime > 0;
    }, null, { timeout: STEP_LIMIT_MS });
    const t1 = await frame.evaluate(() => document.querySelector("article.clip audio").currentTime);
    await frame.waitForFunction((t) => document.querySelector("article.clip audio").currentTime > t + 0.5,
      t1, { timeout: STEP_LIMIT_MS });
    observed.playback = await frame.evaluate((t) => {
      const audio = document.querySelector("article.clip audio");
      return { paused: audio.paused, t1: t, t2: audio.currentTime, label: audio.getAttribute("aria-label"),
               playButton: document.querySelector("article.clip button.play").getAttribute("aria-label") };
    }, t1);

    // Pick the second clip: the host receives a model-context update naming it.
    await clips.nth(1).locator("button.pick").click();
    await page.waitForFunction(() => window.hostLog.some((e) => e.kind === "update-model-context"),
      null, { timeout: STEP_LIMIT_MS });
    observed.pick = {
      clipId: observed.complete[1].id,
      pressed: await clips.nth(1).locator("button.pick").getAttribute("aria-pressed"),
    };

    // Further into the first clip, still playing, for a picture with the played part showing.
    await firstClip.locator("input[type=range]").fill("24");
    await frame.waitForFunction(() => document.querySelector("article.clip audio").currentTime >= 24, null,
      { timeout: STEP_LIMIT_MS });
    await firstClip.locator("button.play").focus(); // the range follows the playhead when not focused
    await frame.waitForFunction(() => document.querySelector("article.clip .time").textContent.startsWith("0:2"),
      null, { timeout: STEP_LIMIT_MS });
    await shot(page, "playing-light-wide");

    // Download and open go to the host, which decides (the frame itself may not download).
    await clips.nth(1).locator("button.download").click();
    await clips.nth(1).locator("button.open").click();
    await page.waitForFunction(() => window.hostLog.some((e) => e.kind === "open-link"), null,
      { timeout: STEP_LIMIT_MS });

    // Every control has a name a screen reader can read out.
    observed.unnamed = await frame.evaluate(() => [...document.querySelectorAll("button, input, audio, img")]
      .filter((node) => !(node.getAttribute("aria-label") || node.getAttribute("alt") || node.textContent.trim()))
      .map((node) => node.outerHTML.slice(0, 80)));
    // Keyboard: Tab reaches the first play button, and Space toggles it.
    await frame.locator("#heading").click(); // focus is in the frame, on nothing in particular
    await page.keyboard.press("Tab");
    observed.firstTabStop = await frame.evaluate(() => {
      const node = document.activeElement;
      return node ? `${node.tagName.toLowerCase()}.${node.className}` : null;
    });
    const playingBefore = await frame.evaluate(() => !document.querySelector("article.clip audio").paused);
    await page.keyboard.press("Space");
    const playingAfter = await frame.evaluate(() => !document.querySelector("article.clip audio").paused);
    observed.spaceToggles = playingBefore !== playingAfter;
    await page.keyboard.press("Space"); // back as it was

    // Extend the first clip from a set playhead.
    await firstClip.locator("button.play").click(); // pause
    await firstClip.locator("input[type=range]").fill(String(EXTEND_AT));
    observed.extendLabel = await firstClip.locator("button.extend").textContent();
    await firstClip.locator("button.extend").click();
    await frame.waitForFunction((old) => {
      const label = document.getElementById("task").textContent;
      return label && !label.includes(old) && document.querySelectorAll("article.clip").length >= 2;
    }, observed.first.taskId, { timeout: STEP_LIMIT_MS });
    observed.extended = await frame.evaluate(() => ({
      taskLabel: document.getElementById("task").textContent,
      clipIds: [...document.querySelectorAll("article.clip")].map((a) => a.dataset.clipId),
      statuses: [...document.querySelectorAll("article.clip")].map((a) => a.dataset.status),
      live: document.getElementById("live").textContent,
    }));
    await shot(page, "extended-light-wide");

    // The same view in the dark, and narrow.
    await page.evaluate(() => window.setTheme("dark"));
    await frame.waitForFunction(() => document.documentElement.dataset.theme === "dark", null,
      { timeout: STEP_LIMIT_MS });
    observed.darkBackground = await frame.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await shot(page, "extended-dark-wide");
    await page.setViewportSize({ width: 380, height: 900 });
    await shot(page, "extended-dark-narrow");
    observed.narrowOverflow = await frame.evaluate(
      () => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    await page.evaluate(() => window.setTheme("light"));
    await frame.waitForFunction(() => document.documentElement.dataset.theme === "light", null,
      { timeout: STEP_LIMIT_MS });
    await shot(page, "extended-light-narrow");

    observed.hostLog = await page.evaluate(() => window.hostLog);
  } finally {
    await browser.close();
    await client.close();
    server.close();
  }
}

report(main, observed);
