import { describe, expect, it } from "vitest";
import { buildMetricsServer } from "./server.js";

describe("the metrics server", () => {
  it("serves the exposition on GET /metrics and nothing else", async () => {
    const app = buildMetricsServer({
      scrape: async () => ({ contentType: "text/plain; version=0.0.4", body: "up 1\n" }),
    });
    const r = await app.inject({ url: "/metrics" });
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    expect(r.body).toBe("up 1\n");
    const other = await app.inject({ url: "/v1/namespaces/a/applications" });
    expect(other.statusCode).toBe(404);
    expect(other.json().message).toMatch(/this port serves GET \/metrics only/);
    await app.close();
  });
});
