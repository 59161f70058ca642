// The view's side of the MCP Apps bridge (JSON-RPC 2.0 over postMessage, SEP-1865, spec
// 2026-01-26), and the DOM helpers both views share. Inlined into each view by
// server/ui/__init__.py, so every view stays one self-contained file: nothing is loaded from
// the network, and every value shown is set as text, never parsed as HTML.
"use strict";

const PROTOCOL_VERSION = "2026-01-26";
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

class ToolFailed extends Error {}

const Bridge = (() => {
  const host = window.parent;
  const pending = new Map();
  const handlers = new Map();
  let nextId = 1;

  function send(message) {
    host.postMessage({ jsonrpc: "2.0", ...message }, "*");
  }

  function request(method, params) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      send({ id, method, params });
    });
  }

  function notify(method, params) {
    send({ method, params: params || {} });
  }

  function on(method, handler) {
    handlers.set(method, handler);
  }

  function answer(message) {
    const handler = handlers.get(message.method);
    Promise.resolve()
      .then(() => {
        if (!handler) throw Object.assign(new Error(`Method not found: ${message.method}`), { code: -32601 });
        return handler(message.params || {});
      })
      .then(
        (result) => send({ id: message.id, result: result || {} }),
        (error) => send({ id: message.id, error: { code: error.code || -32000, message: String(error.message) } }),
      );
  }

  window.addEventListener("message", (event) => {
    if (event.source !== host) return; // only the host (or its sandbox proxy) talks to us
    const message = event.data;
    if (!message || message.jsonrpc !== "2.0") return;
    if (message.method === undefined && message.id !== undefined) {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (message.error) waiting.reject(new Error(message.error.message || "The host refused the request."));
      else waiting.resolve(message.result);
    } else if (message.id !== undefined) {
      answer(message);
    } else {
      const handler = handlers.get(message.method);
      if (handler) handler(message.params || {});
    }
  });

  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args });
    if (result && result.isError) throw new ToolFailed(textOf(result) || `${name} failed.`);
    return result;
  }

  function applyHostContext(context) {
    const root = document.documentElement;
    if (context.theme === "dark" || context.theme === "light") {
      root.dataset.theme = context.theme;
      root.style.colorScheme = context.theme;
    }
    const variables = (context.styles && context.styles.variables) || {};
    for (const [name, value] of Object.entries(variables)) {
      if (name.startsWith("--") && typeof value === "string") root.style.setProperty(name, value);
    }
  }

  function watchSize() {
    let last = "";
    new ResizeObserver(() => {
      // The content's own box: scrollHeight would never report a shrink below the frame.
      const box = document.documentElement.getBoundingClientRect();
      const width = Math.ceil(box.width);
      const height = Math.ceil(box.height);
      if (`${width}x${height}` === last) return;
      last = `${width}x${height}`;
      notify("ui/notifications/size-changed", { width, height });
    }).observe(document.documentElement);
  }

  async function connect(name) {
    on("ping", () => ({}));
    on("ui/notifications/host-context-changed", applyHostContext);
    const init = await request("ui/initialize", {
      protocolVersion: PROTOCOL_VERSION,
      appInfo: { name, version: "0.1.0" },
      appCapabilities: { availableDisplayModes: ["inline"] },
    });
    applyHostContext((init && init.hostContext) || {});
    notify("ui/notifications/initialized", {});
    watchSize();
    return init;
  }

  return { connect, on, request, notify, callTool };
})();

function textOf(result) {
  return (result.content || [])
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join(" ");
}

// An element with attributes and children; strings become text nodes, never HTML.
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

// The image blocks of a tool result, as <img> elements (known image types and base64 only).
function images(result, captions) {
  const blocks = (result.content || []).filter(
    (b) => b.type === "image" && IMAGE_TYPES.has(b.mimeType) && /^[A-Za-z0-9+/=\s]+$/.test(b.data || ""),
  );
  return blocks.map((block, i) => {
    const caption = captions && captions[i] ? captions[i].replaceAll("_", " ") : null;
    return el(
      "figure",
      { class: "plot" },
      el("img", { src: `data:${block.mimeType};base64,${block.data}`, alt: caption || `plot ${i + 1}` }),
      caption ? el("figcaption", {}, caption) : null,
    );
  });
}

function number(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && digits === undefined) return value.toLocaleString("en");
  return value.toFixed(digits === undefined ? 4 : digits);
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return `${value.toFixed(1)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function percent(ratio) {
  return `${(100 * (ratio || 0)).toFixed(ratio > 0 && ratio < 0.01 ? 2 : 1)}%`;
}
