// Names of an application's objects at and past the limits of their parts (application names up
// to 63 characters, the CRD's limit; function names up to 127).
import { describe, expect, it } from "vitest";
import { codeConfigMapName } from "../http-api/routes/deploy.js";
import { POD_SUFFIX_LENGTH, podNamePrefix, podSecretName, randomPodSuffix, sourceConfigMapName } from "./names.js";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const subdomain = (s: string) => s.length <= 253 && DNS_SUBDOMAIN.test(s);

describe("names of an application's objects", () => {
  const apps = ["a", "my-app", "x".repeat(62), "y".repeat(63), `${"a".repeat(31)}-${"b".repeat(31)}`, "v1.2.app"];
  const fns = ["f", "_private", "__call__", "Class.method", "g".repeat(127), "H_".repeat(60)];

  it("a pod name is a DNS label (63) for every application and function name", () => {
    for (const app of apps)
      for (const fn of fns) {
        const pod = podNamePrefix(app, fn) + randomPodSuffix();
        expect(pod.length, `${app}/${fn}`).toBeLessThanOrEqual(63);
        expect(DNS_LABEL.test(pod), pod).toBe(true);
        expect(subdomain(podSecretName(pod)), podSecretName(pod)).toBe(true);
      }
    expect(podNamePrefix("y".repeat(63), "g".repeat(127)).length).toBe(63 - POD_SUFFIX_LENGTH);
    expect(podNamePrefix("y".repeat(63), "g".repeat(127))).not.toBe(podNamePrefix("y".repeat(63), "g".repeat(126)));
  });

  it("source and code ConfigMap names are DNS subdomains for the longest application names", () => {
    for (const app of [...apps, "z".repeat(253)]) {
      expect(subdomain(sourceConfigMapName(app, "0123456789")), app).toBe(true);
    }
    for (const app of apps) expect(subdomain(codeConfigMapName(app, Buffer.from("zip"))), app).toBe(true);
  });
});
