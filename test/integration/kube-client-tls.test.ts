// The client's TLS against the real apiserver: every socket shares one secure context built from
// the kubeconfig, so a burst of new connections still presents the client certificate and still
// checks the server against the kubeconfig's CA (and nothing else).
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { KubeClient, loadKubeConfig as loadKc } from "../../operator/src/kube/client.js";
import { kubeconfigPath } from "./support/cluster.js";

describe("kube client TLS on a real apiserver", () => {
  it("answers a burst of requests on new sockets as the kubeconfig's user", async () => {
    const client = await KubeClient.create(loadKc(kubeconfigPath()), { maxSockets: 48 });
    try {
      // 96 at once: the agent opens up to 48 sockets in one go, each from the shared context.
      const answers = await Promise.all(
        Array.from({ length: 96 }, () => client.request<{ kind: string }>("GET", "/api/v1/namespaces/kube-system")),
      );
      expect(answers.every((a) => a.kind === "Namespace")).toBe(true);
      // Anonymous callers may not read namespaces: the client certificate went out on every socket.
      const review = await client.request<{ status: { userInfo: { username: string } } }>(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        { body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } },
      );
      expect(review.status.userInfo.username).not.toBe("system:anonymous");
    } finally {
      client.close();
    }
  });

  it("refuses a server whose certificate the kubeconfig's CA did not sign", async () => {
    const kc = loadKc(kubeconfigPath());
    const cluster = kc.getCurrentCluster()!;
    const user = kc.getCurrentUser()!;
    // The client certificate is no CA of the server's certificate.
    const wrong = new KubeConfig();
    wrong.loadFromOptions({
      clusters: [{ name: "c", server: cluster.server, caData: user.certData }],
      users: [{ name: "u", certData: user.certData, keyData: user.keyData }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const client = await KubeClient.create(wrong, { requestTimeoutMs: 5_000 });
    try {
      await expect(client.request("GET", "/api/v1/namespaces/kube-system")).rejects.toThrow(
        /certificate|self.signed|issuer/i,
      );
    } finally {
      client.close();
    }
  });
});
