// Bearer tokens checked by Kubernetes: TokenReview says who the caller is, SubjectAccessReview
// whether RBAC lets them act on FunctionCalls (or Applications) in the namespace. Decisions are
// cached briefly so that a burst of calls costs two API requests, not two per call. With audiences
// configured (TRELLIS_HTTP_TOKEN_AUDIENCES) the TokenReview asks for them and the token must be
// valid for one of them: callers mint tokens for Trellis (`kubectl create token SA --audience
// trellis`), which the API server itself does not accept, so a token sent here cannot be replayed
// against the API server.
import { createHash } from "node:crypto";
import type { AccessCheck, AuthDecision, Authorizer } from "./types.js";

export interface ReviewClient {
  request<T>(method: string, path: string, opts?: { body?: unknown }): Promise<T>;
}

interface TokenReview {
  status?: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  };
}
type ReviewedUser = NonNullable<NonNullable<TokenReview["status"]>["user"]> & { username: string };
interface SubjectAccessReview {
  status?: { allowed?: boolean; denied?: boolean; reason?: string };
}

export const AUTH_CACHE_TTL_MS = 10_000;

export class KubernetesAuthorizer implements Authorizer {
  private readonly cache = new Map<string, { until: number; decision: AuthDecision }>();

  constructor(
    private readonly client: ReviewClient,
    private readonly opts: { ttlMs?: number; now?: () => number; maxEntries?: number; audiences?: string[] } = {},
  ) {}

  async authorize(token: string | undefined, check: AccessCheck): Promise<AuthDecision> {
    if (!token)
      return { allowed: false, status: 401, message: "missing bearer token: send Authorization: Bearer <token>" };
    const now = (this.opts.now ?? Date.now)();
    const key = `${createHash("sha256").update(token).digest("hex")}|${check.namespace}|${check.verb}|${check.resource}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.decision;
    const decision = await this.review(token, check);
    if (this.cache.size >= (this.opts.maxEntries ?? 10_000)) this.cache.clear();
    this.cache.set(key, { until: now + (this.opts.ttlMs ?? AUTH_CACHE_TTL_MS), decision });
    return decision;
  }

  /** TokenReview: who the token is, or the reason it is refused. */
  private async authenticate(token: string): Promise<{ user: ReviewedUser } | { refused: string }> {
    const audiences = this.opts.audiences?.length ? this.opts.audiences : undefined;
    const tr = await this.client.request<TokenReview>("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, ...(audiences ? { audiences } : {}) },
      },
    });
    const user = tr.status?.user;
    if (!tr.status?.authenticated || !user?.username) {
      const why = tr.status?.error ? `: ${tr.status.error}` : "";
      const aud = audiences ? ` (tokens must be issued for the audience ${audiences.join(" or ")})` : "";
      return { refused: `invalid bearer token${why}${aud}` };
    }
    const wrongAudience = audienceMismatch(audiences, tr.status.audiences);
    return wrongAudience ? { refused: wrongAudience } : { user: { ...user, username: user.username } };
  }

  private async review(token: string, check: AccessCheck): Promise<AuthDecision> {
    const who = await this.authenticate(token);
    if ("refused" in who) return { allowed: false, status: 401, message: who.refused };
    const { user } = who;
    const sar = await this.client.request<SubjectAccessReview>(
      "POST",
      "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      {
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            resourceAttributes: { namespace: check.namespace, verb: check.verb, ...resourceAttributes(check.resource) },
          },
        },
      },
    );
    if (sar.status?.allowed) return { allowed: true, user: user.username };
    return {
      allowed: false,
      status: 403,
      message: `${user.username} may not ${check.verb} ${qualified(check.resource)} in namespace ${check.namespace}${
        sar.status?.reason ? ` (${sar.status.reason})` : ""
      }`,
    };
  }
}

const CORE = new Set<AccessCheck["resource"]>(["configmaps", "pods/log"]);

/** A SubjectAccessReview's group, resource and subresource ("pods/log" → pods, log). */
export function resourceAttributes(resource: AccessCheck["resource"]) {
  const [res, subresource] = resource.split("/") as [string, string | undefined];
  return { group: CORE.has(resource) ? "" : "trellis.dev", resource: res, ...(subresource ? { subresource } : {}) };
}

const qualified = (resource: AccessCheck["resource"]) => (CORE.has(resource) ? resource : `${resource}.trellis.dev`);

/**
 * Why a reviewed token is refused for its audiences, or undefined: with audiences asked for, the
 * review's status.audiences must name one of them (an authenticator that ignores audiences
 * answers none, and is refused).
 */
export function audienceMismatch(asked: string[] | undefined, answered: string[] | undefined): string | undefined {
  if (!asked) return undefined;
  if ((answered ?? []).some((a) => asked.includes(a))) return undefined;
  return `invalid bearer token: not issued for the audience ${asked.join(" or ")} (the review answered ${
    answered?.length ? answered.join(", ") : "no audience"
  }); mint one with kubectl create token <serviceaccount> --audience ${asked[0]}`;
}

/** The user of allowAll: streams are then counted per remote address. */
export const ANONYMOUS = "anonymous";

/** Local development only: everyone may do everything. */
export const allowAll: Authorizer = {
  authorize: async () => ({ allowed: true, user: ANONYMOUS }),
};
