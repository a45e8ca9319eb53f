// The web view's files. The operator bundle carries them as strings (operator/build.mjs defines
// __TRELLIS_UI_ASSETS__); from source (tsx, tests) they are built once with esbuild, on first use,
// so the operator's start does not wait for it. Served from a map by exact name: no file system
// path is ever formed from a URL.
declare const __TRELLIS_UI_ASSETS__: Record<string, string> | undefined;

export interface Asset {
  type: string;
  body: string;
}
export type Assets = ReadonlyMap<string, Asset>;

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
};

export function assetMap(files: Record<string, string>): Assets {
  const m = new Map<string, Asset>();
  for (const [name, body] of Object.entries(files)) {
    const type = TYPES[name.slice(name.lastIndexOf(".") + 1)];
    if (type) m.set(name, { type, body });
  }
  return m;
}

let loading: Promise<Assets> | undefined;

export function loadAssets(): Promise<Assets> {
  loading ??= (typeof __TRELLIS_UI_ASSETS__ !== "undefined" ? Promise.resolve(__TRELLIS_UI_ASSETS__) : fromSource())
    .then(assetMap)
    .catch((e: unknown) => {
      loading = undefined; // a later request tries again
      throw e;
    });
  return loading;
}

async function fromSource(): Promise<Record<string, string>> {
  // A computed specifier: the operator bundle must not pull esbuild in.
  const url = new URL("./build-assets.mjs", import.meta.url).href;
  const m = (await import(url)) as { buildUiAssets(): Promise<Record<string, string>> };
  return m.buildUiAssets();
}
