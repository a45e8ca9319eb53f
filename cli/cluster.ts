// The plugin's view of the cluster: a client from KUBECONFIG (like kubectl), the current
// namespace, and checks that turn "nothing works" into a sentence saying what is missing.
import {
  CHILD_SUFFIX_LEN,
  type FunctionCall,
  LABEL,
  callAsShown,
  expandShard,
  isShard,
  itemName,
  labelValue,
  shardItem,
} from "../protocol/index.js";
import { KubeApiError, KubeClient, type RequestOptions, loadKubeConfig } from "./kube.js";

export type Call = FunctionCall;

export class CliError extends Error {}

export interface Ctx {
  client: KubeClient;
  namespace: string;
  server: string;
  operatorNamespace: string;
}

export async function context(opts: { namespace?: string; operatorNamespace?: string }): Promise<Ctx> {
  let kc, client;
  try {
    kc = loadKubeConfig();
    client = await KubeClient.create(kc, { timeoutMs: 15_000, userAgent: "kubectl-trellis" });
  } catch (e) {
    throw new CliError(`no usable kubeconfig: ${(e as Error).message}`);
  }
  const current = kc.getContextObject(kc.getCurrentContext());
  return {
    client,
    namespace: opts.namespace ?? current?.namespace ?? "default",
    server: kc.getCurrentCluster()?.server ?? "(unknown)",
    operatorNamespace: opts.operatorNamespace ?? process.env.TRELLIS_OPERATOR_NAMESPACE ?? "trellis-system",
  };
}

/** Runs a request; network failures become "cannot reach the cluster". */
export async function kube<T>(ctx: Ctx, method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  try {
    return await ctx.client.request<T>(method, path, opts);
  } catch (e) {
    if (e instanceof KubeApiError) throw e;
    throw new CliError(
      `cannot reach the cluster at ${ctx.server}: ${(e as Error).message} (check KUBECONFIG and that the cluster is running)`,
    );
  }
}

const FC = (ns: string) => `/apis/trellis.dev/v1alpha1/namespaces/${ns}/functioncalls`;
export const fcPath = (ns: string, name?: string) => (name ? `${FC(ns)}/${name}` : FC(ns));
export const appPath = (ns: string, name?: string) =>
  `/apis/trellis.dev/v1alpha1/namespaces/${ns}/applications${name ? `/${name}` : ""}`;

/** The Trellis CRDs are installed (else a sentence saying how to install them). */
export async function requireCrds(ctx: Ctx): Promise<void> {
  try {
    const r = await kube<{ resources?: { name: string }[] }>(ctx, "GET", "/apis/trellis.dev/v1alpha1");
    const names = new Set((r.resources ?? []).map((x) => x.name));
    if (names.has("functioncalls") && names.has("applications")) return;
  } catch (e) {
    if (!(e instanceof KubeApiError && e.statusCode === 404)) throw e;
  }
  throw new CliError(
    `the Trellis CRDs (applications.trellis.dev, functioncalls.trellis.dev) are not installed on ${ctx.server}: install the chart (helm install trellis charts/trellis) or kubectl apply -f crds/`,
  );
}

/**
 * An operator holds a leader Lease in the operator namespace and renewed it recently (else
 * nothing would run a request). Leases are the operator's own `trellis-operator` or the chart's
 * (labelled part-of=trellis, component=operator), unless TRELLIS_LEASE_NAME names one.
 */
export async function requireOperator(ctx: Ctx): Promise<void> {
  type Lease = {
    metadata: { name: string; labels?: Record<string, string> };
    spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
  };
  const wanted = process.env.TRELLIS_LEASE_NAME;
  const list = await kube<{ items: Lease[] }>(
    ctx,
    "GET",
    `/apis/coordination.k8s.io/v1/namespaces/${ctx.operatorNamespace}/leases`,
  );
  const leases = list.items.filter((l) =>
    wanted
      ? l.metadata.name === wanted
      : l.metadata.name === "trellis-operator" ||
        (l.metadata.labels?.["app.kubernetes.io/part-of"] === "trellis" &&
          l.metadata.labels?.["app.kubernetes.io/component"] === "operator"),
  );
  if (leases.length === 0)
    throw new CliError(
      `no Trellis operator is running: no operator lease in namespace ${ctx.operatorNamespace} (install the chart, or pass --operator-namespace)`,
    );
  const age = (l: Lease) => {
    const renewed = l.spec?.renewTime ? Date.parse(l.spec.renewTime) : 0;
    return l.spec?.holderIdentity && renewed ? Date.now() - renewed : Infinity;
  };
  const live = leases.find((l) => age(l) <= (l.spec?.leaseDurationSeconds ?? 15) * 2000);
  if (!live) {
    const newest = Math.min(...leases.map(age));
    throw new CliError(
      `no Trellis operator is running: its lease in ${ctx.operatorNamespace} was last renewed ${
        Number.isFinite(newest) ? `${Math.round(newest / 1000)}s ago` : "never"
      } (is the operator Deployment ready?)`,
    );
  }
}

export async function getCall(ctx: Ctx, name: string): Promise<Call> {
  try {
    return await kube<Call>(ctx, "GET", fcPath(ctx.namespace, name));
  } catch (e) {
    if (e instanceof KubeApiError && e.statusCode === 404)
      throw new CliError(`FunctionCall ${name} not found in namespace ${ctx.namespace}`);
    throw e;
  }
}

const decoded = new WeakMap<Call, Call[]>();

/**
 * Calls as users see them: each map shard (DESIGN.md, "Map shards") replaced by its items, each a
 * call of its own with its phase, attempts, pod and times. A shard object is decoded once (a watch
 * replaces the object when it changes).
 */
export function expandCalls(calls: Iterable<Call>): Call[] {
  const out: Call[] = [];
  for (const c of calls) {
    if (!isShard(c)) {
      out.push(callAsShown(c));
      continue;
    }
    let items = decoded.get(c);
    if (!items) decoded.set(c, (items = expandShard(c)));
    for (const item of items) out.push(item);
  }
  return out;
}

/** The request's objects (label selector; shards not expanded), the root excepted. */
async function requestObjects(ctx: Ctx, request: string): Promise<Call[]> {
  const list = await kube<{ items: Call[] }>(ctx, "GET", fcPath(ctx.namespace), {
    query: { labelSelector: `${LABEL.request}=${labelValue(request)}` },
  });
  // The label value may be a hash of a long name: keep only this request's calls.
  return list.items.filter((c) => c.metadata.name !== request && c.spec.request === request);
}

/** The root and every call of a request, map items held by shards as calls of their own. */
export async function requestCalls(ctx: Ctx, request: string): Promise<Call[]> {
  const root = await getCall(ctx, request);
  return [root, ...expandCalls(await requestObjects(ctx, request))];
}

/**
 * A call by name: its object, or a map item held by a shard of its request (an item is no object:
 * its name is its request's + "-" + 16 characters, so its request's shards are searched). A shard
 * is not a call.
 */
export async function findCall(ctx: Ctx, name: string): Promise<Call> {
  let c: Call | undefined;
  try {
    c = await kube<Call>(ctx, "GET", fcPath(ctx.namespace, name));
  } catch (e) {
    if (!(e instanceof KubeApiError && e.statusCode === 404)) throw e;
  }
  if (c && isShard(c))
    throw new CliError(
      `${name} is not a call but a shard of map ${c.spec.parent}, holding its items ${c.spec.shard!.offset}–${
        c.spec.shard!.offset + c.spec.shard!.items.length - 1
      }: kubectl trellis graph ${c.spec.request} lists them`,
    );
  if (c) return callAsShown(c);
  const cut = name.length - CHILD_SUFFIX_LEN - 1;
  const request = cut > 0 && name[cut] === "-" ? name.slice(0, cut) : undefined;
  for (const s of request ? await requestObjects(ctx, request) : []) {
    if (!isShard(s)) continue;
    const { offset, items } = s.spec.shard!;
    for (let i = 0; i < items.length; i++)
      if (itemName(request!, s.spec.parent!, offset + i) === name) return shardItem(s, i, name);
  }
  throw new CliError(`FunctionCall ${name} not found in namespace ${ctx.namespace}`);
}
