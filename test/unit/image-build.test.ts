// kubectl trellis build, pure part: Image → Dockerfile, content hash, image names, flag checks.
import { describe, expect, it } from "vitest";
import {
  type ImageSpec,
  checkRegistry,
  contentHash,
  contextSources,
  hostBuildArgs,
  hostPipCert,
  imageRef,
  parseBuildEnv,
  renderDockerfile,
  withHostArgs,
} from "../../cli/image-build.js";

const opts = { defaultBase: "localhost/trellis-base:test", buildEnvKeys: [] };
const tools: ImageSpec = {
  name: "Tools",
  tag: "v1",
  base_image: null,
  steps: [
    { op: "RUN", args: ["pip install humanize==4.9.0"] },
    { op: "ENV", args: ["GREETING", 'say "hi" to $USER \\ ok'] },
    { op: "WORKDIR", args: ["/opt/app"] },
    { op: "COPY", args: ["data/", "/opt/app/data"] },
    { op: "ADD", args: ["https://example.invalid/x.tar", "/opt/x.tar"] },
  ],
};

describe("renderDockerfile", () => {
  it("layers the base, host build args, pip for the default base, the steps in order and the runtime check", () => {
    const text = renderDockerfile(tools, opts);
    const lines = text.trimEnd().split("\n");
    expect(lines[1]).toBe("FROM localhost/trellis-base:test");
    expect(lines.filter((l) => l.startsWith("ARG "))).toEqual([]); // the machine's are added at build time
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    expect(lines[at("RUN")]).toContain("python3-pip");
    expect(lines).toContain('RUN ["/bin/sh","-c","pip install humanize==4.9.0"]');
    expect(lines).toContain('ENV GREETING="say \\"hi\\" to \\$USER \\\\ ok"');
    expect(lines).toContain("WORKDIR /opt/app");
    expect(lines).toContain('COPY ["data","/opt/app/data"]');
    expect(lines).toContain('ADD ["https://example.invalid/x.tar","/opt/x.tar"]');
    expect(at('RUN ["/bin/sh","-c","pip')).toBeLessThan(at("ENV GREETING"));
    expect(at("ENV GREETING")).toBeLessThan(at("WORKDIR"));
    expect(lines.at(-2)).toContain("sys.version_info >= (3, 10)");
    expect(lines.at(-1)).toBe('LABEL org.trellis.image.name="Tools" org.trellis.image.tag="v1"');
  });

  it("keeps an Image's own base and adds no pip prelude to it", () => {
    const text = renderDockerfile({ ...tools, base_image: "localhost/other:1", steps: [] }, opts);
    expect(text).toContain("FROM localhost/other:1\n");
    expect(text).not.toContain("python3-pip");
  });

  it("declares --build-env keys as ARGs, sorted, once", () => {
    const text = renderDockerfile(tools, { ...opts, buildEnvKeys: ["ZED", "ALPHA", "PIP_INDEX_URL"] });
    expect(text.match(/^ARG PIP_INDEX_URL$/gm)).toHaveLength(1);
    expect(text.indexOf("ARG ALPHA")).toBeLessThan(text.indexOf("ARG ZED"));
  });

  it("adds the machine's build args after FROM for the builder, once, valid names only", () => {
    const text = renderDockerfile(tools, { ...opts, buildEnvKeys: ["PIP_INDEX_URL"] });
    const built = withHostArgs(text, ["PIP_INDEX_URL", "HTTPS_PROXY", "PIP_CERT", "BAD KEY"]);
    const lines = built.split("\n");
    expect(lines.slice(1, 5)).toEqual([
      "FROM localhost/trellis-base:test",
      "ARG HTTPS_PROXY",
      "ARG PIP_CERT",
      "ARG PIP_INDEX_URL",
    ]);
    expect(built.match(/^ARG PIP_INDEX_URL$/gm)).toHaveLength(1);
    expect(built).not.toContain("BAD KEY");
    expect(withHostArgs(text, [])).toBe(text);
  });

  it("keeps multi-line RUN commands one instruction", () => {
    const text = renderDockerfile({ ...tools, steps: [{ op: "RUN", args: ["echo a\nFROM evil"] }] }, opts);
    expect(text).not.toMatch(/^FROM evil/m);
    expect(text).toContain('RUN ["/bin/sh","-c","echo a\\nFROM evil"]');
  });

  it.each([
    [{ op: "ENV", args: ["1BAD", "x"] }, /ENV key "1BAD"/],
    [{ op: "ENV", args: ["K", "a\nRUN evil"] }, /single line/],
    [{ op: "COPY", args: ["../secret", "/x"] }, /inside the build context/],
    [{ op: "COPY", args: ["/etc/passwd", "/x"] }, /inside the build context/],
    [{ op: "ADD", args: ["a/../../b", "/x"] }, /inside the build context/],
    [{ op: "COPY", args: ["*.txt", "/x"] }, /wildcards/],
    [{ op: "COPY", args: ["https://example.invalid/a", "/x"] }, /inside the build context/],
    [{ op: "WORKDIR", args: ["/a\nRUN evil"] }, /single line/],
    [{ op: "RUN", args: ["  "] }, /non-empty/],
    [{ op: "USER", args: ["root"] }, /unknown build step/],
  ])("rejects %j", (step, message) => {
    expect(() => renderDockerfile({ ...tools, steps: [step as ImageSpec["steps"][0]] }, opts)).toThrow(message);
  });

  it("rejects a base that is not an image reference", () => {
    expect(() => renderDockerfile({ ...tools, base_image: "x\nRUN evil" }, opts)).toThrow(/not an image reference/);
  });
});

describe("content hash and names", () => {
  const file = { path: "data/a.txt", executable: false, sha256: "0".repeat(64) };

  it("is stable, and changes with the Dockerfile, a context file, its mode and the build env", () => {
    const d = renderDockerfile(tools, opts);
    const h = contentHash(d, [file], {});
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(contentHash(d, [file], {})).toBe(h);
    expect(contentHash(`${d}#`, [file], {})).not.toBe(h);
    expect(contentHash(d, [{ ...file, sha256: "1".repeat(64) }], {})).not.toBe(h);
    expect(contentHash(d, [{ ...file, executable: true }], {})).not.toBe(h);
    expect(contentHash(d, [file], { A: "1" })).not.toBe(h);
    const other = { path: "b", executable: false, sha256: "2".repeat(64) };
    expect(contentHash(d, [file, other], {})).toBe(contentHash(d, [other, file], {}));
  });

  it("names images by hash, locally or under --registry", () => {
    const h = "ab".repeat(32);
    expect(imageRef(tools, h, undefined)).toBe(`localhost/trellis-fn/tools:${"ab".repeat(8)}`);
    expect(imageRef({ ...tools, name: "My Image!" }, h, "reg.example:5000/team/")).toBe(
      `reg.example:5000/team/my-image:${"ab".repeat(8)}`,
    );
  });

  it("lists the context paths COPY and ADD read, URLs excluded", () => {
    expect(contextSources(tools)).toEqual(["data"]);
  });
});

describe("flags", () => {
  it("parses --build-env KEY=VALUE and names the flag and rule on errors", () => {
    expect(parseBuildEnv(["A=1", "B_2=x=y", "C="])).toEqual({ A: "1", B_2: "x=y", C: "" });
    expect(parseBuildEnv(undefined)).toEqual({});
    expect(() => parseBuildEnv(["NOEQUALS"])).toThrow(/--build-env "NOEQUALS": expected KEY=VALUE/);
    expect(() => parseBuildEnv(["1A=x"])).toThrow(/--build-env "1A=x": expected KEY=VALUE with KEY a variable name/);
    expect(() => parseBuildEnv(["=x"])).toThrow(/--build-env/);
    expect(() => parseBuildEnv(["A=1", "A=2"])).toThrow(/--build-env A: given twice/);
    expect(() => parseBuildEnv(["A=1\n2"])).toThrow(/--build-env A: the value must be a single line/);
  });

  it("checks --registry", () => {
    expect(checkRegistry("reg.example:5000/team")).toBe("reg.example:5000/team");
    expect(checkRegistry(undefined)).toBeUndefined();
    for (const bad of ["https://reg.example", "reg.example/x:tag", "Reg", "a b", ""])
      expect(() => checkRegistry(bad)).toThrow(/--registry .*HOST\[:PORT\]\[\/PATH\]/);
  });
});

describe("hostBuildArgs", () => {
  it("passes pip's network settings from its files and the environment, which wins; never local paths", () => {
    const list = [
      "global.index-url='https://mirror.example/simple'",
      "install.index-url='https://install.example/simple'",
      "global.cert='/etc/ssl/certs/ca.crt'",
      "global.find-links='/opt/wheels'",
      "global.trusted-host='mirror.example'",
      ":env:.default-timeout='180'",
    ].join("\n");
    expect(hostBuildArgs(list, { HTTPS_PROXY: "http://proxy.example:3128", PIP_TRUSTED_HOST: "env.example" })).toEqual({
      PIP_INDEX_URL: "https://install.example/simple",
      PIP_TRUSTED_HOST: "env.example",
      HTTPS_PROXY: "http://proxy.example:3128",
    });
    expect(hostBuildArgs("", { PIP_FIND_LINKS: "https://links.example/ https://b.example/" })).toEqual({
      PIP_FIND_LINKS: "https://links.example/ https://b.example/",
    });
  });
});

describe("hostPipCert", () => {
  it("takes PIP_CERT, else the cert of pip's files", () => {
    expect(hostPipCert("global.cert='/etc/ssl/a.pem'", {})).toBe("/etc/ssl/a.pem");
    expect(hostPipCert("global.cert='/etc/ssl/a.pem'", { PIP_CERT: "/b.pem" })).toBe("/b.pem");
    expect(hostPipCert("global.index-url='https://x.example'", {})).toBeUndefined();
  });

  it("never passes a cert path as a plain build arg", () => {
    expect(hostBuildArgs("global.cert='/etc/ssl/a.pem'", { PIP_CERT: "/b.pem" })).toEqual({});
  });
});
