// The ui proxy in front of a plain HTTP server standing in for the operator's API: it adds the
// token, drops the browser's credentials, streams events as they come and passes reads only.
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admit, startUiProxy, upstreamHeaders } from "../../cli/ui-proxy.js";

let upstream: Server;
let proxy: { url: string; close: () => Promise<void> };
const seen: { url?: string; headers: Record<string, unknown> }[] = [];
// The upstream sends its second event only once the test has read the first through the proxy.
let release: () => void = () => {};
const firstRead = new Promise<void>((r) => (release = r));

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push({ url: req.url, headers: req.headers });
    if (req.url?.startsWith("/base/events")) {
      res.writeHead(200, { "content-type": "text/event-stream", "set-cookie": "s=1" });
      res.write("data: one\n\n");
      void firstRead.then(() => res.end("data: two\n\n"));
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "set-cookie": "s=1" });
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  const port = (upstream.address() as AddressInfo).port;
  proxy = await startUiProxy({ url: `http://127.0.0.1:${port}/base/`, token: "tok" }, 0);
});
afterAll(async () => {
  await proxy.close();
  await new Promise((r) => upstream.close(r));
});

describe("kubectl trellis ui proxy", () => {
  it("forwards reads under the API's base path with the user's token and no cookies", async () => {
    const origin = new URL(proxy.url).origin;
    const r = await fetch(`${origin}/v1/namespaces/a/applications`, {
      headers: { authorization: "Bearer stolen", cookie: "x=1", accept: "application/json" },
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ path: "/base/v1/namespaces/a/applications" });
    expect(r.headers.get("set-cookie")).toBeNull();
    const last = seen.at(-1)!;
    expect(last.headers.authorization).toBe("Bearer tok");
    expect(last.headers.cookie).toBeUndefined();
    const root = await fetch(`${origin}/`, { redirect: "manual" });
    expect([root.status, root.headers.get("location")]).toEqual([302, "/ui/"]);
  });

  it("streams server-sent events before the upstream finishes", async () => {
    const origin = new URL(proxy.url).origin;
    const r = await fetch(`${origin}/events`);
    const reader = r.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toBe("data: one\n\n");
    release();
    let rest = "";
    for (let c = await reader.read(); !c.done; c = await reader.read()) rest += new TextDecoder().decode(c.value);
    expect(rest).toBe("data: two\n\n");
  });

  it("refuses writes and foreign Host names", async () => {
    const origin = new URL(proxy.url).origin;
    const post = await fetch(`${origin}/v1/namespaces/a/applications/x`, { method: "POST", body: "{}" });
    expect(post.status).toBe(405);
    expect((await post.json()).message).toMatch(/reads only \(GET, HEAD\), not POST/);
    const port = Number(new URL(proxy.url).port);
    expect(admit("GET", "/ui/", `evil.example:${port}`, port)).toEqual({
      ok: false,
      status: 421,
      message: `the Trellis UI proxy answers only as 127.0.0.1:${port} or localhost:${port}`,
    });
    expect(admit("GET", "//evil/x", `localhost:${port}`, port)).toMatchObject({ ok: false, status: 400 });
    expect(admit("DELETE", "/v1/x", `127.0.0.1:${port}`, port)).toMatchObject({ ok: false, status: 405 });
  });

  it("keeps only the headers a page needs", () => {
    expect(
      upstreamHeaders(
        { accept: "text/html", cookie: "a", authorization: "x", "last-event-id": "7", "x-forwarded-for": "1" },
        "t",
      ),
    ).toEqual({ accept: "text/html", "last-event-id": "7", authorization: "Bearer t" });
  });
});
