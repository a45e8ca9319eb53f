/* global document, fetch */
// Fetches of the v1 JSON routes. The page adds no credentials: a proxy in front adds them.
import { h } from "./dom.js";

/** API URLs relative to the page (…/ui/ → …/v1/…), so a proxy may mount the operator under a prefix. */
export const apiUrl = (path) => new URL(`../v1/${path}`, document.baseURI).href;
export const enc = encodeURIComponent;

export async function api(path) {
  const r = await fetch(apiUrl(path), { headers: { accept: "application/json" }, credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${r.status}: ${body.message ?? r.statusText}`);
  return body;
}

export function failure(e) {
  return h("p", { class: "problem", role: "alert" }, `Could not load: ${e.message}`);
}
