// The API explorer of `astra serve` (/docs): lists the operations of the server's own
// /openapi.json, proposes a body built from each operation's request schema, sends it and shows
// the answer.  Everything the server says is put into the page as text (textContent), never as
// markup.
"use strict";

const $ = (id) => document.getElementById(id);
let spec = null;
let current = null;

// A JSON pointer such as "#/components/schemas/Error" into the document.
function resolve(schema) {
  let seen = 0;
  while (schema && typeof schema.$ref === "string" && seen++ < 32) {
    schema = schema.$ref.replace(/^#\//, "").split("/")
      .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((node, key) => (node == null ? undefined : node[key]), spec);
  }
  return schema || {};
}

// The alternatives of a schema (oneOf/anyOf of several bodies), else the schema alone.
function variants(schema) {
  const s = resolve(schema);
  const list = s.oneOf || s.anyOf;
  return list && list.length > 1 ? list.map((v) => ({ref: v, schema: resolve(v)})) : [{ref: schema, schema: s}];
}

function nowIso() {
  return new Date().toISOString().slice(0, 19);
}

// A small valid-looking value for a schema: examples and constants first, then by type.
function example(schema, depth) {
  const s = resolve(schema);
  if (depth > 8) return null;
  if ("example" in s) return s.example;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  for (const key of ["oneOf", "anyOf"]) {
    if (Array.isArray(s[key]) && !s.type && !s.properties) {
      const alts = s[key].map(resolve);
      // a time is µs or an ISO string: the string (now) reads better, and is not before every row
      const pick = alts.find(isDateTime) || alts.find((v) => v.type !== "null") || alts[0];
      return example(pick, depth + 1);
    }
  }
  let type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
  if (!type && s.properties) type = "object";
  switch (type) {
    case "object": {
      const out = {};
      const props = s.properties || {};
      for (const name of required(s, 0)) if (name in props) out[name] = example(props[name], depth + 1);
      return out;
    }
    case "array": return [example(s.items || {}, depth + 1)];
    case "integer": return Math.max(1, s.minimum ?? 1);
    case "number": return 1.5;
    case "boolean": return false;
    case "string": return s.pattern && s.pattern.includes("T(") ? nowIso() : "text";
    default: return null;
  }
}

function isDateTime(s) {
  return s.type === "string" && typeof s.pattern === "string" && s.pattern.includes("T(");
}

// The properties an object must have: its `required`, those of every `allOf` part and of the
// first alternative of an `anyOf`/`oneOf` (e.g. `amount` of a request, given one of two ways).
function required(schema, depth) {
  const s = resolve(schema);
  const out = new Set(s.required || []);
  if (depth > 8) return out;
  for (const part of s.allOf || []) for (const name of required(part, depth + 1)) out.add(name);
  for (const key of ["anyOf", "oneOf"]) {
    if (Array.isArray(s[key]) && s[key].length) for (const name of required(s[key][0], depth + 1)) out.add(name);
  }
  return out;
}

function operations() {
  const out = [];
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      if (item[method]) out.push({path, method: method.toUpperCase(), op: item[method]});
    }
  }
  return out;
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

function listEndpoints() {
  const ul = $("endpoints");
  ul.replaceChildren();
  for (const entry of operations()) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.append(text("span", entry.method, "method"), text("code", entry.path),
                  text("span", entry.op.summary || "", "summary"));
    button.addEventListener("click", () => select(entry, button));
    li.append(button);
    ul.append(li);
  }
}

function requestSchema(op) {
  const content = op.requestBody && op.requestBody.content;
  return content && content["application/json"] ? content["application/json"].schema : null;
}

function select(entry, button) {
  current = entry;
  for (const b of document.querySelectorAll("nav button")) b.setAttribute("aria-current", String(b === button));
  $("operation").hidden = false;
  $("answer").hidden = true;
  $("op-method").textContent = entry.method;
  $("op-path").textContent = entry.path;
  $("op-summary").textContent = entry.op.summary || "";
  const schema = requestSchema(entry.op);
  $("body-part").hidden = !schema;
  if (!schema) return;
  const choices = variants(schema);
  const select = $("variant");
  select.replaceChildren();
  choices.forEach((v, i) => {
    const name = v.ref && v.ref.$ref ? v.ref.$ref.split("/").pop() : `body ${i + 1}`;
    const option = text("option", name);
    option.value = String(i);
    select.append(option);
  });
  $("variant-label").hidden = choices.length < 2;
  const fill = () => {
    const v = choices[Number(select.value) || 0];
    $("variant-description").textContent = v.schema.description || "";
    $("body").value = JSON.stringify(example(v.ref, 0), null, 2);
    $("body-error").textContent = "";
  };
  select.onchange = fill;
  fill();
}

async function send() {
  if (!current) return;
  const headers = {};
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (requestSchema(current.op)) {
    try {
      JSON.parse($("body").value);
    } catch (err) {
      $("body-error").textContent = `The body is not JSON: ${err.message}`;
      return;
    }
    $("body-error").textContent = "";
    headers["Content-Type"] = "application/json";
    body = $("body").value;
  }
  $("answer").hidden = false;  // the previous answer goes at once: what shows next is this one's
  $("status").textContent = "sending…";
  $("status").className = "muted";
  $("elapsed").textContent = "";
  $("headers").replaceChildren();
  $("response").textContent = "";
  const started = performance.now();
  let answer;
  try {
    answer = await fetch(current.path, {method: current.method, headers, body});
  } catch (err) {
    $("answer").hidden = false;
    $("status").textContent = "no answer";
    $("status").className = "bad";
    $("elapsed").textContent = "";
    $("headers").replaceChildren();
    $("response").textContent = String(err);
    return;
  }
  const raw = await answer.text();
  $("answer").hidden = false;
  $("status").textContent = `${answer.status} ${answer.statusText}`;
  $("status").className = answer.ok ? "ok" : "bad";
  $("elapsed").textContent = `${Math.round(performance.now() - started)} ms`;
  const dl = $("headers");
  dl.replaceChildren();
  for (const name of ["content-type", "x-request-id", "deprecation", "warning", "allow", "www-authenticate"]) {
    const value = answer.headers.get(name);
    if (value !== null) dl.append(text("dt", name), text("dd", value));
  }
  let shown = raw;
  try {
    shown = JSON.stringify(JSON.parse(raw), null, 2);
  } catch (_) { /* not JSON (e.g. /metrics): shown as it came */ }
  $("response").textContent = shown;
}

async function start() {
  $("send").addEventListener("click", send);
  try {
    const answer = await fetch("/openapi.json");
    if (!answer.ok) throw new Error(`/openapi.json answered ${answer.status}`);
    spec = await answer.json();
    listEndpoints();
  } catch (err) {
    $("endpoints").replaceChildren();
    $("failure").textContent = `Cannot read the OpenAPI document: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", start);
