import { describe, expect, it } from "vitest";
import {
  buildFunctionPod,
  buildPodSecret,
  buildSourceConfigMap,
  codeHash,
  podFunction,
  podTemplateHash,
} from "./pod-builder.js";
import { functionLabelValue } from "../../../protocol/index.js";
import { podNamePrefix, randomPodSuffix } from "./names.js";
import { defaultApplicationSettings, effectiveFunctionSettings } from "./settings.js";
import type { ApplicationObject } from "./types.js";

const settings = defaultApplicationSettings({ runtimeImage: "localhost/trellis-runtime:dev" });

function app(spec: Partial<ApplicationObject["spec"]> = {}, name = "shop"): ApplicationObject {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Application",
    metadata: { name, namespace: "ns1", uid: "uid-1", generation: 1 },
    spec: { entrypoint: "main", source: { inline: "print('hi')\n" }, ...spec },
  };
}
const fnOf = (a: ApplicationObject, name: string) => effectiveFunctionSettings(a, name, undefined, settings);
const sidecarOf = (p: ReturnType<typeof buildFunctionPod>) => p.spec!.initContainers![0]!;
const workerOf = (p: ReturnType<typeof buildFunctionPod>) => p.spec!.containers[0]!;
const envOf = (c: { env?: { name: string; value?: string }[] }) =>
  Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e]));

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe("buildFunctionPod", () => {
  const a = app();
  const pod = buildFunctionPod(a, fnOf(a, "main"), settings, "abcde");

  it("labels, names and owns the pod", () => {
    expect(pod.metadata.name).toBe("shop-main-abcde");
    expect(pod.metadata.namespace).toBe("ns1");
    expect(pod.metadata.labels).toMatchObject({
      "trellis.dev/application": "shop",
      "trellis.dev/function": "main",
      "app.kubernetes.io/managed-by": "trellis",
      "app.kubernetes.io/part-of": "trellis",
    });
    expect(pod.metadata.labels?.["trellis.dev/pod-template-hash"]).toMatch(/^[0-9a-f]{10}$/);
    expect(pod.metadata.ownerReferences).toEqual([
      {
        apiVersion: "trellis.dev/v1alpha1",
        kind: "Application",
        name: "shop",
        uid: "uid-1",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(podFunction(pod)).toBe("main");
  });

  it("gives runtime pods no Kubernetes token and a restricted security context", () => {
    const s = pod.spec!;
    expect(s.automountServiceAccountToken).toBe(false);
    expect(s.enableServiceLinks).toBe(false);
    expect(s.hostNetwork).toBeUndefined();
    expect(s.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    });
    for (const c of [sidecarOf(pod), workerOf(pod)]) {
      expect(c.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
    }
    expect(s.terminationGracePeriodSeconds).toBe(settings.terminationGracePeriodSeconds);
  });

  it("runs the sidecar as a native sidecar with the per-pod token and a startup probe", () => {
    const sc = sidecarOf(pod);
    expect(sc.name).toBe("sidecar");
    expect(sc.restartPolicy).toBe("Always");
    expect(sc.image).toBe("localhost/trellis-runtime:dev");
    expect(sc.command).toEqual(["node", "/opt/trellis/sidecar/sidecar.mjs"]);
    const env = envOf(sc);
    expect(env.TRELLIS_OPERATOR_URL).toBe(settings.operatorUrl);
    expect(env.TRELLIS_FUNCTION).toBe("main");
    expect(env.TRELLIS_SOCKET).toBe("/run/trellis/worker.sock");
    expect(env.TRELLIS_POD_NAME).toMatchObject({ valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
    expect(env.TRELLIS_POD_NAMESPACE).toMatchObject({ valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } });
    expect(env.TRELLIS_POD_TOKEN).toMatchObject({
      valueFrom: { secretKeyRef: { name: "shop-main-abcde.trellis-pod-token", key: "token" } },
    });
    expect(sc.startupProbe?.exec?.command).toEqual(["test", "-S", "/run/trellis/worker.sock"]);
  });

  it("runs the worker on the stock image with the SDK copy first on PYTHONPATH and the source at /app", () => {
    const w = workerOf(pod);
    expect(w.image).toBe("localhost/trellis-runtime:dev");
    expect([...w.command!, ...w.args!]).toEqual([
      "python3",
      "-m",
      "trellis.worker",
      "--socket",
      "/run/trellis/worker.sock",
      "--module",
      "app.py",
      "--function",
      "main",
    ]);
    expect(envOf(sidecarOf(pod)).TRELLIS_CONCURRENCY).toBeUndefined(); // the worker announces its own
    expect(envOf(w).PYTHONPATH).toBe("/run/trellis/python:/app");
    expect(envOf(w).HOME).toBe("/tmp");
    expect(w.volumeMounts).toContainEqual({ name: "source", mountPath: "/app", readOnly: true });
    // Spilled values: the run volume has room for a 1 GiB value, and the worker writes only its values dir.
    expect(pod.spec!.volumes).toContainEqual({ name: "trellis-run", emptyDir: { sizeLimit: "3Gi" } });
    expect(w.volumeMounts).toContainEqual({ name: "trellis-run", mountPath: "/run/trellis", readOnly: true });
    expect(w.volumeMounts).toContainEqual({ name: "trellis-run", mountPath: "/run/trellis/values", subPath: "values" });
    const cm = buildSourceConfigMap(a)!;
    expect(pod.spec!.volumes).toContainEqual({
      name: "source",
      configMap: { name: cm.metadata.name, items: [{ key: "app.py", path: "app.py" }], defaultMode: 0o444 },
    });
    expect(pod.spec!.volumes?.find((v) => v.name === "trellis-run")?.emptyDir).toBeDefined();
    expect(w.terminationMessagePolicy).toBe("FallbackToLogsOnError");
  });

  it("honours image, module, resources, env, secrets and hostNetwork", () => {
    const b = app({
      image: "example.org/team/img:1",
      module: "pkg.app",
      source: undefined,
      env: [
        { name: "A", value: "app" },
        { name: "B", value: "app" },
        { name: "PYTHONPATH", value: "/opt/lib" },
      ],
      defaults: { secrets: ["common"], env: [{ name: "B", value: "defaults" }] },
      functions: [
        {
          name: "embed",
          resources: { cpu: "2", memory: "1Gi", gpu: 1 },
          secrets: ["hf-token", "common"],
          env: [{ name: "C", value: "fn" }],
          concurrency: 4,
        },
      ],
    });
    const p = buildFunctionPod(b, fnOf(b, "embed"), defaultApplicationSettings({ hostNetwork: true }), "zzzzz");
    const w = workerOf(p);
    expect(w.image).toBe("example.org/team/img:1");
    expect(w.imagePullPolicy).toBeUndefined();
    expect(w.args).toEqual([
      "--socket",
      "/run/trellis/worker.sock",
      "--module",
      "pkg.app",
      "--function",
      "embed",
      "--concurrency",
      "4",
    ]);
    expect(w.resources).toEqual({
      requests: { cpu: "2", memory: "1Gi", "nvidia.com/gpu": "1" },
      limits: { cpu: "2", memory: "1Gi", "nvidia.com/gpu": "1" },
    });
    expect(envOf(w)).toMatchObject({
      A: "app",
      B: "defaults",
      C: "fn",
      PYTHONPATH: "/run/trellis/python:/app:/opt/lib",
    });
    expect(w.envFrom).toEqual([{ secretRef: { name: "common" } }, { secretRef: { name: "hf-token" } }]);
    expect(w.volumeMounts?.some((m) => m.mountPath === "/app")).toBe(false);
    expect(envOf(sidecarOf(p)).TRELLIS_CONCURRENCY).toBe("4");
    expect(p.spec!.hostNetwork).toBe(true);
    expect(p.spec!.dnsPolicy).toBe("ClusterFirstWithHostNet");
  });

  it("runs each function on its own image when it names one, else the Application's or the stock image", () => {
    const b = app({
      functions: [
        { name: "embed", image: "example.org/team/gpu:2" },
        { name: "main", maxContainers: 2 },
      ],
    });
    const embed = workerOf(buildFunctionPod(b, fnOf(b, "embed"), settings, "aaaaa"));
    expect(embed.image).toBe("example.org/team/gpu:2");
    // A user's image is pulled by the cluster's default policy, not the stock image's.
    expect(embed.imagePullPolicy).toBeUndefined();
    const main = workerOf(buildFunctionPod(b, fnOf(b, "main"), settings, "aaaaa"));
    expect(main.image).toBe("localhost/trellis-runtime:dev");
    expect(main.imagePullPolicy).toBe(settings.runtimeImagePullPolicy);
    const c = app({ image: "example.org/team/app:1", functions: [{ name: "embed", image: "example.org/team/gpu:2" }] });
    expect(workerOf(buildFunctionPod(c, fnOf(c, "main"), settings, "aaaaa")).image).toBe("example.org/team/app:1");
    expect(workerOf(buildFunctionPod(c, fnOf(c, "embed"), settings, "aaaaa")).image).toBe("example.org/team/gpu:2");
    // The sidecar always runs the operator's runtime image.
    expect(sidecarOf(buildFunctionPod(c, fnOf(c, "embed"), settings, "aaaaa")).image).toBe(
      "localhost/trellis-runtime:dev",
    );
  });

  it("rolls a function's pods and changes the code identity when its image changes", () => {
    const one = app({ functions: [{ name: "embed", image: "example.org/gpu:1" }] });
    const two = app({ functions: [{ name: "embed", image: "example.org/gpu:2" }] });
    const plain = app();
    expect(podTemplateHash(two, fnOf(two, "embed"), settings)).not.toBe(
      podTemplateHash(one, fnOf(one, "embed"), settings),
    );
    // Another function's image does not roll this function's pods.
    expect(podTemplateHash(two, fnOf(two, "main"), settings)).toBe(podTemplateHash(one, fnOf(one, "main"), settings));
    expect(codeHash(two, settings)).not.toBe(codeHash(one, settings));
    expect(codeHash(one, settings)).not.toBe(codeHash(plain, settings));
    // Functions without images keep the hash Applications had before per-function images existed.
    expect(codeHash(app({ functions: [{ name: "main", maxContainers: 3 }] }), settings)).toBe(
      codeHash(plain, settings),
    );
  });

  it("mounts a referenced ConfigMap and imports its key by default", () => {
    const b = app({ source: { configMapRef: { name: "my-code", key: "main.py" } } });
    const p = buildFunctionPod(b, fnOf(b, "main"), settings, "abcde");
    expect(workerOf(p).args?.[3]).toBe("main.py");
    expect(p.spec!.volumes).toContainEqual({
      name: "source",
      configMap: { name: "my-code", items: [{ key: "main.py", path: "main.py" }], defaultMode: 0o444 },
    });
    expect(buildSourceConfigMap(b)).toBeUndefined();
  });

  it("keeps names and labels valid for any Python function name and long app names", () => {
    const long = "a".repeat(40) + "-" + "b".repeat(40);
    for (const [appName, fn] of [
      ["shop", "_private_helper"],
      ["shop", "Process_Order"],
      ["shop", "__"],
      ["shop.v2", "x"],
      [long, "a_very_long_function_name_that_goes_on_and_on_for_quite_a_while_"],
    ] as const) {
      const b = app({}, appName);
      const p = buildFunctionPod(b, fnOf(b, fn), settings, randomPodSuffix());
      expect(p.metadata.name!.length).toBeLessThanOrEqual(63);
      expect(p.metadata.name).toMatch(DNS_LABEL);
      expect(p.metadata.labels?.["trellis.dev/function"]).toMatch(LABEL_VALUE);
      expect(p.metadata.labels?.["trellis.dev/function"]!.length).toBeLessThanOrEqual(63);
      expect(podFunction(p)).toBe(fn);
    }
    expect(podNamePrefix("shop", "Process_Order")).toBe("shop-process-order-");
    expect(functionLabelValue("process_order")).toBe("process_order");
    expect(functionLabelValue("_a")).not.toBe(functionLabelValue("a_"));
  });

  it("changes the template hash with the code and the settings, not with the pod name", () => {
    const a1 = app();
    const h = podTemplateHash(a1, fnOf(a1, "main"), settings);
    expect(
      buildFunctionPod(a1, fnOf(a1, "main"), settings, "xxxxx").metadata.labels?.["trellis.dev/pod-template-hash"],
    ).toBe(h);
    const a2 = app({ source: { inline: "print('changed')\n" } });
    expect(podTemplateHash(a2, fnOf(a2, "main"), settings)).not.toBe(h);
    const a3 = app({ functions: [{ name: "main", maxContainers: 3 }] });
    expect(podTemplateHash(a3, fnOf(a3, "main"), settings)).toBe(h); // scaling bounds are not in the pod
    expect(podTemplateHash(a1, fnOf(a1, "main"), defaultApplicationSettings({ runtimeImage: "other:1" }))).not.toBe(h);
    // Another credential key (a reinstalled operator) outdates every pod.
    expect(podTemplateHash(a1, fnOf(a1, "main"), { ...settings, credentialKeyId: "k2" })).not.toBe(h);
    // The code hash follows the code only.
    const a4 = app({ env: [{ name: "X", value: "1" }] });
    expect(podTemplateHash(a4, fnOf(a4, "main"), settings)).not.toBe(h);
    expect(codeHash(a4, settings)).toBe(codeHash(a1, settings));
    expect(codeHash(a2, settings)).not.toBe(codeHash(a1, settings));
  });
});

describe("function pods on a multi-node cluster", () => {
  const lossTolerations = (seconds: number) =>
    ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"].map((key) => ({
      key,
      operator: "Exists",
      effect: "NoExecute",
      tolerationSeconds: seconds,
    }));

  it("tolerates a lost node for the operator's time, else the Application's, instead of 300 s", () => {
    const a = app();
    expect(buildFunctionPod(a, fnOf(a, "main"), settings, "abcde").spec!.tolerations).toEqual(lossTolerations(30));
    const fast = defaultApplicationSettings({ nodeLossTolerationSeconds: 5 });
    expect(buildFunctionPod(a, fnOf(a, "main"), fast, "abcde").spec!.tolerations).toEqual(lossTolerations(5));
    // The spec wins, 0 included (evicted as soon as the node is tainted).
    const own = app({ nodeLossTolerationSeconds: 0 });
    expect(buildFunctionPod(own, fnOf(own, "main"), fast, "abcde").spec!.tolerations).toEqual(lossTolerations(0));
    const slow = app({ nodeLossTolerationSeconds: 600 });
    expect(buildFunctionPod(slow, fnOf(slow, "main"), fast, "abcde").spec!.tolerations).toEqual(lossTolerations(600));
  });

  it("replaces pods when the toleration changes", () => {
    const a = app();
    const h = podTemplateHash(a, fnOf(a, "main"), settings);
    const fast = defaultApplicationSettings({ nodeLossTolerationSeconds: 5 });
    expect(podTemplateHash(a, fnOf(a, "main"), fast)).not.toBe(h);
    const own = app({ nodeLossTolerationSeconds: 10 });
    expect(podTemplateHash(own, fnOf(own, "main"), settings)).not.toBe(h);
  });

  it("refuses an operator toleration out of bounds", () => {
    expect(() => defaultApplicationSettings({ nodeLossTolerationSeconds: -1 })).toThrow();
    expect(() => defaultApplicationSettings({ nodeLossTolerationSeconds: 86401 })).toThrow();
  });

  it("spreads the pods of one function softly over nodes", () => {
    const b = app({ functions: [{ name: "_embed" }] });
    const pod = buildFunctionPod(b, fnOf(b, "_embed"), settings, "abcde");
    // "_embed" is no label value: the selector takes the encoded one the pod is labelled with.
    const selector = {
      matchLabels: { "trellis.dev/application": "shop", "trellis.dev/function": functionLabelValue("_embed") },
    };
    expect(selector.matchLabels["trellis.dev/function"]).not.toBe("_embed");
    expect(pod.spec!.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: "kubernetes.io/hostname",
        whenUnsatisfiable: "ScheduleAnyway",
        labelSelector: selector,
      },
    ]);
    // The selector picks this pod (and its siblings) by its own labels, not another function's.
    for (const c of pod.spec!.topologySpreadConstraints!)
      expect(pod.metadata.labels).toMatchObject(c.labelSelector!.matchLabels!);
    const main = buildFunctionPod(b, fnOf(b, "main"), settings, "abcde");
    expect(main.spec!.topologySpreadConstraints![0]!.labelSelector!.matchLabels).toEqual({
      "trellis.dev/application": "shop",
      "trellis.dev/function": "main",
    });
  });
});

describe("buildSourceConfigMap and buildPodSecret", () => {
  it("makes an immutable, owned, content-addressed ConfigMap", () => {
    const cm = buildSourceConfigMap(app())!;
    expect(cm.metadata.name).toMatch(/^shop-source-[0-9a-f]{10}$/);
    expect(cm.immutable).toBe(true);
    expect(cm.data).toEqual({ "app.py": "print('hi')\n" });
    expect(cm.metadata.ownerReferences?.[0]).toMatchObject({ kind: "Application", uid: "uid-1", controller: true });
    expect(cm.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe("trellis");
    expect(buildSourceConfigMap(app({ source: { inline: "x = 2\n" } }))!.metadata.name).not.toBe(cm.metadata.name);
  });

  it("makes a token Secret owned by its pod", () => {
    const a = app();
    const pod = buildFunctionPod(a, fnOf(a, "main"), settings, "abcde");
    pod.metadata.uid = "pod-uid";
    const s = buildPodSecret(pod, "tok");
    expect(s.metadata.name).toBe("shop-main-abcde.trellis-pod-token");
    expect(s.stringData).toEqual({ token: "tok" });
    expect(s.metadata.ownerReferences).toEqual([
      { apiVersion: "v1", kind: "Pod", name: "shop-main-abcde", uid: "pod-uid" },
    ]);
  });
});
