// Entry point of the Trellis sidecar (bundled to /opt/trellis/sidecar/sidecar.mjs): config from
// the environment, SDK copy, worker socket, ready marker, then run until SIGTERM and drain.
import { rmSync, writeFileSync } from "node:fs";
import { createLogger } from "../../../protocol/index.js";
import { ConfigError, loadConfig } from "./config.js";
import { OperatorClient } from "./operator-client.js";
import { copySdk } from "./sdk-copy.js";
import { Sidecar } from "./sidecar.js";

declare const __TRELLIS_VERSION__: string | undefined;
const version = typeof __TRELLIS_VERSION__ === "string" ? __TRELLIS_VERSION__ : "dev";

async function main(): Promise<number> {
  if (process.argv.includes("--version")) {
    process.stdout.write(`trellis-sidecar ${version}\n`);
    return 0;
  }
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`trellis-sidecar: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger({
    level: config.logLevel,
    fields: { component: "sidecar", pod: `${config.podNamespace}/${config.podName}`, function: config.function },
  });
  if (config.sdkSource) {
    const started = Date.now();
    const how = await copySdk(config.sdkSource, config.sdkDir, version);
    log.info("SDK ready", { how, from: config.sdkSource, to: config.sdkDir, ms: Date.now() - started });
  }
  const client = new OperatorClient({
    url: config.operatorUrl,
    namespace: config.podNamespace,
    pod: config.podName,
    token: config.token,
    log,
  });
  const sidecar = new Sidecar({ config, client, log, version });
  await sidecar.start();
  writeFileSync(config.readyFile, `${process.pid}\n`);
  log.info("sidecar started", { version, operator: config.operatorUrl, readyFile: config.readyFile });

  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: string) => {
      if (signalled) return;
      signalled = true;
      log.info("signal received, draining", { signal });
      sidecar.drain().then(
        () => resolve(0),
        (e: unknown) => {
          log.error("drain failed", { error: e });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  }).finally(() => rmSync(config.readyFile, { force: true }));
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`trellis-sidecar: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
