// The test host: the official ext-apps AppBridge on the host side of the player's frame.
//
// Bundled by the driver (esbuild, test-only) and served to Chromium. Tool calls the view makes go
// to window.mcpCallTool, which the driver exposes and answers with its MCP client connected to
// the server under test; everything else the view asks of the host is recorded in window.hostLog
// via window.hostRecord, for the driver to read.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

// Standard host style variables, light and dark, in the spirit of what chat hosts pass.
const STYLES = {
  light: {
    "--color-background-primary": "#ffffff",
    "--color-background-secondary": "#f7f6f2",
    "--color-background-tertiary": "#ecebe5",
    "--color-text-primary": "#1f1e1b",
    "--color-text-secondary": "#5f5d57",
    "--color-border-primary": "#d9d6cc",
    "--font-sans": "\"DejaVu Sans\", system-ui, sans-serif",
  },
  dark: {
    "--color-background-primary": "#30302e",
    "--color-background-secondary": "#262624",
    "--color-background-tertiary": "#3a3937",
    "--color-text-primary": "#ecebe6",
    "--color-text-secondary": "#b0aea5",
    "--color-border-primary": "#4a4843",
    "--font-sans": "\"DejaVu Sans\", system-ui, sans-serif",
  },
};

// The policy a web host builds from the resource's declared domains (the specification's own
// construction): nothing that is not declared.
function cspFor(csp) {
  const res = (csp && csp.resourceDomains || []).join(" ");
  const connect = (csp && csp.connectDomains || []).join(" ");
  const frames = (csp && csp.frameDomains || []).join(" ") || "'none'";
  const base = (csp && csp.baseUriDomains || []).join(" ") || "'self'";
  return [
    "default-src 'none'",
    `script-src 'self' 'unsafe-inline' ${res}`,
    `style-src 'self' 'unsafe-inline' ${res}`,
    `connect-src 'self' ${connect}`,
    `img-src 'self' data: ${res}`,
    `font-src 'self' ${res}`,
    `media-src 'self' data: ${res}`,
    `frame-src ${frames}`,
    "object-src 'none'",
    `base-uri ${base}`,
  ].join("; ");
}

function withCsp(html, policy) {
  const meta = `<meta http-equiv="Content-Security-Policy" content="${policy.replace(/"/g, "&quot;")}">`;
  return html.replace(/<head>/i, `<head>${meta}`);
}

window.hostLog = [];
let bridge = null;

function record(kind, params) {
  window.hostLog.push({ kind, params });
  return window.hostRecord(kind, params);
}

window.startHost = async ({ html, csp, toolName, toolArguments, toolResult, theme }) => {
  const iframe = document.getElementById("app");
  document.body.classList.toggle("dark", theme === "dark");
  document.getElementById("said").textContent = `The assistant called ${toolName}.`;
  bridge = new AppBridge(
    null,
    { name: "suno-mcp test host", version: "1.0.0" },
    {
      openLinks: {},
      downloadFile: {},
      serverTools: {},
      logging: {},
      updateModelContext: { text: {}, structuredContent: {} },
      message: { text: {} },
      sandbox: { csp },
    },
    {
      hostContext: {
        theme,
        styles: { variables: STYLES[theme] },
        displayMode: "inline",
        availableDisplayModes: ["inline"],
        platform: "web",
        locale: "en-US",
      },
    },
  );
  bridge.oncalltool = (params) => window.mcpCallTool(params);
  bridge.onupdatemodelcontext = async (params) => { await record("update-model-context", params); return {}; };
  bridge.onmessage = async (params) => { await record("message", params); return {}; };
  bridge.ondownloadfile = async (params) => { await record("download-file", params); return {}; };
  bridge.onopenlink = async (params) => { await record("open-link", params); return {}; };
  bridge.onsizechange = ({ height }) => {
    if (height) iframe.style.height = `${height + 2}px`;
  };
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.srcdoc = withCsp(html, cspFor(csp));
  await initialized;
  await bridge.sendToolInput({ arguments: toolArguments });
  await bridge.sendToolResult(toolResult);
  return { policy: cspFor(csp) };
};

window.setTheme = async (theme) => {
  document.body.classList.toggle("dark", theme === "dark");
  await bridge.sendHostContextChange({ theme, styles: { variables: STYLES[theme] } });
};
